package server

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/settings"
)

// TestBureauTimeZoneFromSettings: pages and exports show times in the zone
// the settings name, and a change made on the settings page shows on the
// next page.
func TestBureauTimeZoneFromSettings(t *testing.T) {
	w := newWorld(t)
	admin := signIn(t, w.srv.URL, "district.admin")
	person := "/people/" + itoa(w.personA.ID)
	shown := func(zone string) string {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		return w.personA.CreatedAt.In(loc).Format("2006-01-02 15:04")
	}
	if _, page := admin.get(t, person); !strings.Contains(page, shown("Asia/Shanghai")) {
		t.Fatalf("person page lacks the creation time in Asia/Shanghai (%s)", shown("Asia/Shanghai"))
	}
	// Urumqi is two hours behind Beijing, so every time reads differently.
	status, page := admin.post(t, "/settings", url.Values{"csrf_token": {admin.csrf}, settings.BureauTimeZone: {"Asia/Urumqi"}})
	if status != http.StatusOK || strings.Contains(page, "field-error") {
		t.Fatalf("save settings = %d\n%s", status, page)
	}
	_, page = admin.get(t, person)
	if !strings.Contains(page, shown("Asia/Urumqi")) || strings.Contains(page, shown("Asia/Shanghai")) {
		t.Errorf("after the change the person page does not show times in Asia/Urumqi (%s)", shown("Asia/Urumqi"))
	}
	// Exports follow the same zone.
	status, body := admin.get(t, "/people/export?format=csv")
	if status != http.StatusOK {
		t.Fatalf("export = %d", status)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, w.personA.CreatedAt.In(mustZone(t, "Asia/Urumqi")).Format("2006-01-02 15:04:05")) {
		t.Errorf("export does not show times in Asia/Urumqi:\n%v", rows)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestUserExport: the users list downloads with the list's scope and
// filters, under a stamped file name, and the download is audited.
func TestUserExport(t *testing.T) {
	w := newWorld(t)
	admin := signIn(t, w.srv.URL, "district.admin")
	res, err := admin.c.Get(w.srv.URL + "/users/export?format=csv&q=cdc")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || len(rows) != 3 || rows[1][1] != "beiao.cdc" || rows[2][1] != "lingkun.cdc" {
		t.Fatalf("export = %d %v; want the two cdc users", res.StatusCode, rows)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.Contains(cd, "filename*=UTF-8''users-") || !strings.HasSuffix(cd, ".csv") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	var audited int
	if err := w.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'user.export' AND outcome = 'ok'").Scan(&audited); err != nil || audited != 1 {
		t.Errorf("audit entries for the export = %d, %v; want 1", audited, err)
	}
	// A township user is not a bureau admin: no export for them.
	beiao := signIn(t, w.srv.URL, "beiao.cdc")
	if status, _ := beiao.get(t, "/users/export?format=csv"); status == http.StatusOK {
		t.Errorf("a township epidemiologist exported the users")
	}
	// The users page links the export with its filters.
	if _, page := admin.get(t, "/users?q=cdc"); !strings.Contains(page, "/users/export?format=xlsx&amp;q=cdc") {
		t.Error("the users page has no export link")
	}
}
