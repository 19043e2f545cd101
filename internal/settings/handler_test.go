package settings_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

func TestSettingsPage(t *testing.T) {
	store, _ := open(t)
	shell := webtest.Shell(t, time.UTC, []locale.Source{settings.Messages}, settings.Templates)
	if missing := shell.Catalog.Missing(); len(missing) > 0 {
		t.Fatalf("missing translations: %v", missing)
	}
	h := settings.NewHandler(store, shell)
	users := map[string]*scope.Principal{
		"admin": {UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
		"epi":   {UserID: 2, Username: "epi", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305"},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /settings", shell.Page(h.Page))
	mux.Handle("POST /settings", shell.Page(h.Save))
	srv := webtest.Serve(t, mux, users)
	do := func(user, method string, form url.Values) (int, string) {
		t.Helper()
		code, body, _ := webtest.Do(t, srv, user, method, "/settings?lang=en", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		return code, body
	}

	status, body := do("admin", "GET", nil)
	if status != http.StatusOK || !strings.Contains(body, `name="deadline.positive_report" value="2h"`) || !strings.Contains(body, "Level IV") {
		t.Fatalf("GET /settings = %d\n%s", status, body)
	}
	if status, _ := do("epi", "GET", nil); status != http.StatusForbidden {
		t.Errorf("epidemiologist GET /settings = %d, want 403", status)
	}
	if status, _ := do("epi", "POST", url.Values{settings.Recall: {"1h"}}); status != http.StatusForbidden {
		t.Errorf("epidemiologist POST /settings = %d, want 403", status)
	}

	// A bad value is shown next to its field, the submitted text kept, nothing saved.
	status, body = do("admin", "POST", url.Values{settings.Recall: {"6h"}, settings.PositiveReport: {"soon"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "must be a duration such as 2h") || !strings.Contains(body, `value="soon"`) {
		t.Errorf("POST bad value = %d\n%s", status, body)
	}
	if d, _ := store.Duration(t.Context(), settings.Recall); d != 12*time.Hour {
		t.Errorf("recall saved as %v despite the error", d)
	}

	status, _ = do("admin", "POST", url.Values{settings.Recall: {"6h"}, settings.ResponseLevel: {"III"}})
	if status != http.StatusSeeOther {
		t.Fatalf("POST good values = %d", status)
	}
	if d, _ := store.Duration(t.Context(), settings.Recall); d != 6*time.Hour {
		t.Errorf("recall = %v after saving 6h", d)
	}
	if lvl, _ := store.ResponseLevel(t.Context()); lvl != settings.LevelIII {
		t.Errorf("level = %q after saving III", lvl)
	}
}
