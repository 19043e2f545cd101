package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

func TestExportPeopleAsAUser(t *testing.T) {
	ctx := context.Background()
	dbURL := storagetest.URL(t)
	var out, errOut bytes.Buffer
	runOK := func(args ...string) {
		t.Helper()
		out.Reset()
		errOut.Reset()
		if code := run(ctx, args, &out, &errOut); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut.String())
		}
	}
	runOK("user", "create", "--db", dbURL, "--username", "district", "--password", "a-long-enough-password", "--role", "epidemiologist", "--region", "330305")
	runOK("user", "create", "--db", dbURL, "--username", "beiao", "--password", "a-long-enough-password", "--role", "epidemiologist", "--region", "330305001")
	runOK("user", "create", "--db", dbURL, "--username", "lab1", "--password", "a-long-enough-password", "--role", "lab", "--region", "330305")

	id := func(first17 string) string { return first17 + string(people.CheckChar(first17)) }
	dir := t.TempDir()
	src := filepath.Join(dir, "people.csv")
	rows := []string{
		"id_type,id_number,name,phone,region_code,no_phone,address,tags",
		"resident_id," + id("33030519800101123") + ",王小一,13812345678,330305001001,,,",
		"resident_id," + id("33030519500101167") + ",王小四,,330305001002,true,,elderly",
		"resident_id," + id("33030519800101145") + ",李小三,13812345670,330305002001,,,", // another township
	}
	if err := os.WriteFile(src, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runOK("import", "people", "--db", dbURL, "--file", src, "--as", "district")

	file := filepath.Join(dir, "beiao.csv")
	runOK("export", "people", "--db", dbURL, "--as", "beiao", "--out", file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	if len(records) != 3 || records[0][0] != "ID" || records[0][3] != "姓名" {
		t.Fatalf("export = %q; want the header and the 2 people of township 330305001", records)
	}
	for _, rec := range records[1:] {
		idNumber, name, phone, region := rec[2], rec[3], rec[6], rec[8]
		if !strings.HasPrefix(region, "330305001") {
			t.Errorf("a person of %s in a township user's export", region)
		}
		if !strings.HasPrefix(idNumber, "33") || !strings.Contains(idNumber, "**************") || !strings.HasPrefix(name, "王*") || strings.Contains(name, "小") {
			t.Errorf("row not masked: id %q name %q", idNumber, name)
		}
		if phone != "" && phone != "138****5678" && phone != "无手机" {
			t.Errorf("phone %q not masked", phone)
		}
	}
	if !strings.Contains(out.String(), "wrote 2 people") {
		t.Errorf("stdout = %q", out.String())
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode = %v, %v; want 0600 (personal data)", fi.Mode(), err)
	}

	// The export is in the audit log under the user's name.
	db, err := storage.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'person.export' AND username = 'beiao' AND detail LIKE 'format=csv%'").Scan(&n); err != nil || n != 1 {
		t.Errorf("person.export audit entries by beiao = %d, %v; want 1", n, err)
	}

	// An existing file is refused and left as it was.
	errOut.Reset()
	if code := run(ctx, []string{"export", "people", "--db", dbURL, "--as", "beiao", "--out", file}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already exists") {
		t.Errorf("export over an existing file: %d %q", code, errOut.String())
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, data) {
		t.Error("the existing file was changed")
	}
	// A region outside the user's scope narrows to nothing, as on the web.
	runOK("export", "people", "--db", dbURL, "--as", "beiao", "--region", "330305002", "--out", filepath.Join(dir, "other.csv"))
	if !strings.Contains(out.String(), "wrote 0 people") {
		t.Errorf("export of another township: %q; want no rows", out.String())
	}
	// A malformed filter, a user without the role and an unknown user leave no file.
	for _, tc := range []struct{ args []string }{
		{[]string{"--as", "beiao", "--region", "33x"}},
		{[]string{"--as", "lab1"}},
		{[]string{"--as", "nobody"}},
	} {
		bad := filepath.Join(dir, "bad.xlsx")
		args := append([]string{"export", "people", "--db", dbURL, "--out", bad}, tc.args...)
		if code := run(ctx, args, &out, &errOut); code != 1 {
			t.Errorf("%v: exit %d; want 1", tc.args, code)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("%v left a file behind", tc.args)
			os.Remove(bad)
		}
	}
	// .xlsx by its file name.
	runOK("export", "people", "--db", dbURL, "--as", "district", "--out", filepath.Join(dir, "all.xlsx"), "--tag", "elderly")
	if !strings.Contains(out.String(), "wrote 1 people") {
		t.Errorf("xlsx export with --tag: %q", out.String())
	}
}
