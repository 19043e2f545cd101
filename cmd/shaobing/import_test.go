package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

func TestImportPeopleAsAUser(t *testing.T) {
	ctx := context.Background()
	dbURL := storagetest.URL(t)
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"user", "create", "--db", dbURL, "--username", "beiao", "--password", "a-long-enough-password", "--role", "epidemiologist", "--region", "330305001"},
		{"user", "create", "--db", dbURL, "--username", "lab1", "--password", "a-long-enough-password", "--role", "lab", "--region", "330305"},
	} {
		if code := run(ctx, args, &out, &errOut); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut.String())
		}
	}
	id := func(first17 string) string { return first17 + string(people.CheckChar(first17)) }
	csvFile := filepath.Join(t.TempDir(), "people.csv")
	rows := []string{
		"id_type,id_number,name,phone,region_code,no_phone,address,tags",
		"resident_id," + id("33030519800101123") + ",王一,13812345678,330305001001,,,",
		"resident_id,330305198001011230,王二,13812345679,330305001001,,,",              // wrong check character
		"resident_id," + id("33030519800101145") + ",王三,13812345670,330305002001,,,", // another township
		"resident_id," + id("33030519500101167") + ",王四,,330305001002,true,,elderly",
	}
	if err := os.WriteFile(csvFile, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(ctx, []string{"import", "people", "--db", dbURL, "--file", csvFile, "--as", "beiao"}, &out, &errOut); code != 0 {
		t.Fatalf("import: %d %s", code, errOut.String())
	}
	var res struct {
		Accepted int
		Rejected []struct {
			Row   int
			Field string
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if res.Accepted != 2 || len(res.Rejected) != 2 || res.Rejected[0].Row != 3 || res.Rejected[0].Field != "id_number" ||
		res.Rejected[1].Row != 4 || res.Rejected[1].Field != "region_code" {
		t.Errorf("report = %+v", res)
	}
	errOut.Reset()
	if code := run(ctx, []string{"import", "people", "--db", dbURL, "--file", csvFile, "--as", "lab1"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "may not import") {
		t.Errorf("a lab user importing people: %d %q", code, errOut.String())
	}
	if code := run(ctx, []string{"import", "people", "--db", dbURL, "--file", csvFile, "--as", "nobody"}, &out, &errOut); code != 1 {
		t.Errorf("an unknown user: %d", code)
	}
}
