package settings_test

import (
	"context"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

func open(t *testing.T) (*settings.Store, *storage.DB) {
	t.Helper()
	db := storagetest.Open(t, audit.Migrations, settings.Migrations)
	clock := func() time.Time { return time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC) }
	return settings.New(db, audit.New(db, clock), clock), db
}

func admin() context.Context {
	return scope.WithPrincipal(context.Background(), &scope.Principal{UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"})
}

func TestDefaults(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	for key, want := range map[string]time.Duration{
		settings.PositiveReport:       2 * time.Hour,
		settings.Recall:               12 * time.Hour,
		settings.InvestigationCore:    4 * time.Hour,
		settings.InvestigationInitial: 24 * time.Hour,
		settings.WasteStorage:         48 * time.Hour,
		settings.EscalateAfter:        24 * time.Hour,
	} {
		if got, err := s.Duration(ctx, key); err != nil || got != want {
			t.Errorf("Duration(%s) = %v, %v; want %v", key, got, err, want)
		}
	}
	if got, err := s.TimeOfDay(ctx, settings.DailyReportCutoff); err != nil || got != 10*time.Hour {
		t.Errorf("cutoff = %v, %v", got, err)
	}
	if got, err := s.ResponseLevel(ctx); err != nil || got != settings.LevelNone {
		t.Errorf("level = %q, %v", got, err)
	}
	if loc, err := s.Location(ctx); err != nil || loc.String() != "Asia/Shanghai" {
		t.Errorf("location = %v, %v", loc, err)
	}
	// Asking for the wrong type or an unknown key is a programming error.
	if _, err := s.Duration(ctx, settings.ResponseLevel); err == nil {
		t.Error("Duration of a choice setting: no error")
	}
	if _, err := s.String(ctx, "deadline.nope"); err == nil {
		t.Error("unknown key: no error")
	}
}

func TestSetChangesValueAndAudits(t *testing.T) {
	s, db := open(t)
	ctx := admin()
	if err := s.Set(ctx, settings.PositiveReport, " 90m "); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Duration(ctx, settings.PositiveReport); err != nil || got != 90*time.Minute {
		t.Fatalf("after Set: %v, %v", got, err)
	}
	if err := s.Set(ctx, settings.ResponseLevel, settings.LevelII); err != nil {
		t.Fatal(err)
	}
	// Setting the same value again writes nothing and audits nothing.
	if err := s.Set(ctx, settings.ResponseLevel, settings.LevelII); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_log WHERE action = 'setting.update' AND username = 'admin'").Scan(&n); err != nil || n != 2 {
		t.Errorf("audit entries = %d, %v; want 2", n, err)
	}
	vals, err := s.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(settings.Keys) {
		t.Fatalf("All returned %d values", len(vals))
	}
	for _, v := range vals {
		switch v.Name {
		case settings.PositiveReport:
			if v.Value != "90m" || v.IsDefault || v.UpdatedBy != "admin" || v.UpdatedAt.IsZero() {
				t.Errorf("positive report value = %+v", v)
			}
		case settings.Recall:
			if v.Value != "12h" || !v.IsDefault {
				t.Errorf("recall value = %+v", v)
			}
		}
	}
}

func TestSetValidation(t *testing.T) {
	s, _ := open(t)
	ctx := admin()
	tests := []struct {
		key, value, code string
	}{
		{settings.PositiveReport, "two hours", "settings.duration"},
		{settings.PositiveReport, "", "required"},
		{settings.PositiveReport, "10s", "settings.duration_range"},
		{settings.PositiveReport, "-2h", "settings.duration_range"},
		{settings.DailyReportCutoff, "25:00", "settings.time_of_day"},
		{settings.DailyReportCutoff, "9:00", "settings.time_of_day"},
		{settings.ResponseLevel, "V", "settings.choice"},
		{settings.BureauTimeZone, "Mars/Olympus", "settings.time_zone"},
		{settings.BureauTimeZone, "", "settings.time_zone"},
		{settings.BureauName, string(make([]rune, 101)), "settings.too_long"},
		{"deadline.nope", "2h", "settings.unknown"},
	}
	for _, tt := range tests {
		err := s.Set(ctx, tt.key, tt.value)
		e := apperr.As(err)
		if e == nil || e.Code != apperr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != tt.key || e.Fields[0].Code != tt.code {
			t.Errorf("Set(%s, %q) = %v; want field %s code %s", tt.key, tt.value, err, tt.key, tt.code)
		}
	}
	for key, value := range map[string]string{settings.DailyReportCutoff: "08:30", settings.BureauTimeZone: "Asia/Urumqi", settings.BureauName: "洞头区卫生健康局", settings.ResponseLevel: "I"} {
		if err := s.Set(ctx, key, value); err != nil {
			t.Errorf("Set(%s, %q): %v", key, value, err)
		}
	}
}

func TestSetAllIsAllOrNothing(t *testing.T) {
	s, _ := open(t)
	ctx := admin()
	err := s.SetAll(ctx, map[string]string{settings.Recall: "6h", settings.WasteStorage: "soon", settings.ResponseLevel: "X"})
	e := apperr.As(err)
	if e == nil || len(e.Fields) != 2 {
		t.Fatalf("SetAll = %v; want two field errors", err)
	}
	if got, _ := s.Duration(ctx, settings.Recall); got != 12*time.Hour {
		t.Errorf("recall changed to %v although the form had errors", got)
	}
}

func TestOnlyBureauAdminsChangeSettings(t *testing.T) {
	s, _ := open(t)
	epi := scope.WithPrincipal(context.Background(), &scope.Principal{UserID: 2, Username: "epi", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305"})
	if err := s.Set(epi, settings.Recall, "6h"); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("epidemiologist Set = %v; want forbidden", err)
	}
	if _, err := s.All(epi); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("epidemiologist All = %v; want forbidden", err)
	}
	if err := s.Set(context.Background(), settings.Recall, "6h"); !apperr.Is(err, apperr.Unauthorized) {
		t.Errorf("anonymous Set = %v; want unauthorized", err)
	}
	// Settings hold bureau-wide: an admin of one township or one institution
	// may not change them for everyone.
	for _, p := range []*scope.Principal{
		{UserID: 3, Username: "township.admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305001"},
		{UserID: 4, Username: "hospital.admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305", InstitutionID: 9},
	} {
		if err := s.Set(scope.WithPrincipal(context.Background(), p), settings.Recall, "6h"); !apperr.Is(err, apperr.Forbidden) {
			t.Errorf("%s Set = %v; want forbidden", p.Username, err)
		}
	}
	if v, err := s.Duration(admin(), settings.Recall); err != nil || v == 6*time.Hour {
		t.Errorf("recall = %v, %v after refused changes", v, err)
	}
}
