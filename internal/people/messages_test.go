package people

import (
	"encoding/json"
	"io/fs"
	"os"
	"regexp"
	"testing"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/web"
)

// TestMessagesJSONMatchesCodes holds messages.json to the error texts in
// idnumber.go, which the errors themselves carry; "required" is the shell's.
func TestMessagesJSONMatchesCodes(t *testing.T) {
	b, err := fs.ReadFile(messageFiles, "messages.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[locale.Lang]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, code := range MessageKeys() {
		if code == CodeRequired {
			continue
		}
		got := m["error."+code]
		if got[locale.ZhCN] == "" || got[locale.En] != EnMessages[code] {
			t.Errorf("messages.json error.%s = %v; want a Chinese text and en %q", code, got, EnMessages[code])
		}
	}
}

// keyUse finds the literal message keys the templates and handlers use.
var keyUse = regexp.MustCompile(`T "([a-z_.]+)"|\bt\("([a-z_.]+)"\)`)

// TestEveryUsedKeyExists loads the catalog as the server does and checks
// that every key the templates name, and every per-value key (tags, ID
// types, sexes), is defined.
func TestEveryUsedKeyExists(t *testing.T) {
	cat := locale.NewCatalog()
	if err := cat.LoadAll(web.Messages, regions.Messages, audit.Messages, Messages); err != nil {
		t.Fatal(err)
	}
	if missing := cat.Missing(); len(missing) > 0 {
		t.Errorf("untranslated: %v", missing)
	}
	var keys []string
	for _, f := range []string{"templates/people_list.html", "templates/people_new.html", "templates/people_detail.html", "templates/people_import.html"} {
		b, err := fs.ReadFile(templateFiles, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keyUse.FindAllStringSubmatch(string(b), -1) {
			keys = append(keys, m[1]+m[2])
		}
	}
	src, err := os.ReadFile("handlers.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range keyUse.FindAllStringSubmatch(string(src), -1) {
		keys = append(keys, m[1]+m[2])
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in the templates; is the pattern right?", len(keys))
	}
	for _, tag := range Tags() {
		keys = append(keys, "people.tag."+string(tag))
	}
	for _, it := range IDTypes() {
		keys = append(keys, "people.id_type."+string(it))
	}
	keys = append(keys, "people.sex.male", "people.sex.female", "notice.people.created", "notice.people.updated")
	for _, code := range []string{CodeNameLength, CodeChars, CodeAddressLength, CodeRegionLevel, CodeTagUnknown, CodeReasonLength, CodeInstUnknown, "region_code.unknown"} {
		keys = append(keys, "error."+code)
	}
	for _, k := range keys {
		if !cat.Has(k) {
			t.Errorf("key %q is not defined", k)
		}
	}
}
