// Package settings holds the bureau's configuration that changes at run time
// without a release: deadline durations, the daily-report cut-off, the
// emergency response level, the bureau's name and time zone. Every key is
// declared in Keys with its type, default and validation; the settings table
// stores only values someone has changed.
//
// Settings are bureau-wide for now: one value per key for the whole
// installation, not per region or institution.
package settings

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

//go:embed messages.json templates/*.html
var moduleFiles embed.FS

// Migrations creates the settings table.
var Migrations = storage.Migrations{Module: "settings", FS: mustSub(migrationFiles, "migrations")}

// Templates are the settings module's pages.
var Templates = web.Templates{FS: moduleFiles, Pattern: "templates/*.html"}

// Messages are the settings module's translations.
var Messages = locale.Source{FS: moduleFiles, Name: "messages.json"}

// Type says how a setting's text value is read and checked.
type Type int

// The types.
const (
	Duration  Type = iota + 1 // a Go duration: "2h", "90m", "48h"
	TimeOfDay                 // "HH:MM", 24-hour, in the bureau's time zone
	Choice                    // one of Key.Choices
	TimeZone                  // an IANA zone name: "Asia/Shanghai"
	Text                      // free text up to Key.MaxLen characters
)

// Key declares one setting. Its label and description are the message keys
// "settings.key.<Name>" and "settings.key.<Name>.hint".
type Key struct {
	Name    string
	Type    Type
	Default string
	Choices []string      // Choice only
	Min     time.Duration // Duration only
	Max     time.Duration // Duration only
	MaxLen  int           // Text only
}

// The setting names other packages read.
const (
	PositiveReport       = "deadline.positive_report"
	Recall               = "deadline.recall"
	InvestigationCore    = "deadline.investigation_core"
	InvestigationInitial = "deadline.investigation_initial"
	DailyReportCutoff    = "deadline.daily_report_cutoff"
	WasteStorage         = "deadline.waste_storage"
	EscalateAfter        = "deadline.escalate_after"
	ResponseLevel        = "response.level"
	BureauTimeZone       = "bureau.timezone"
	BureauName           = "bureau.name"
)

// The response levels (应急响应级别), lowest first; Level I is the most severe.
const (
	LevelNone = "none"
	LevelIV   = "IV"
	LevelIII  = "III"
	LevelII   = "II"
	LevelI    = "I"
)

// ResponseLevels lists the levels, lowest first.
var ResponseLevels = []string{LevelNone, LevelIV, LevelIII, LevelII, LevelI}

// Keys is every known setting, in display order. The durations' defaults are
// the national rules: a positive is reported within 2 hours (逢阳即报), core
// investigation information within hours, the initial investigation report
// within 24 hours, medical waste stored no longer than 48 hours.
var Keys = []Key{
	{Name: PositiveReport, Type: Duration, Default: "2h", Min: time.Minute, Max: 7 * 24 * time.Hour},
	{Name: Recall, Type: Duration, Default: "12h", Min: time.Minute, Max: 7 * 24 * time.Hour},
	{Name: InvestigationCore, Type: Duration, Default: "4h", Min: time.Minute, Max: 7 * 24 * time.Hour},
	{Name: InvestigationInitial, Type: Duration, Default: "24h", Min: time.Minute, Max: 7 * 24 * time.Hour},
	{Name: DailyReportCutoff, Type: TimeOfDay, Default: "10:00"},
	{Name: WasteStorage, Type: Duration, Default: "48h", Min: time.Hour, Max: 30 * 24 * time.Hour},
	{Name: EscalateAfter, Type: Duration, Default: "24h", Min: time.Minute, Max: 30 * 24 * time.Hour},
	{Name: ResponseLevel, Type: Choice, Default: LevelNone, Choices: ResponseLevels},
	{Name: BureauTimeZone, Type: TimeZone, Default: "Asia/Shanghai"},
	{Name: BureauName, Type: Text, Default: "", MaxLen: 100},
}

// IsChoice reports whether the setting is picked from a list (for the form).
func (k Key) IsChoice() bool { return k.Type == Choice }

// IsTimeOfDay reports whether the setting is a time of day (for the form).
func (k Key) IsTimeOfDay() bool { return k.Type == TimeOfDay }

// Lookup returns the declaration of a setting.
func Lookup(name string) (Key, bool) {
	i := slices.IndexFunc(Keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return Key{}, false
	}
	return Keys[i], true
}

// Check validates a value for this key and returns it trimmed (durations
// keep the administrator's spelling, "90m" stays "90m"). The error names the
// setting as its field.
func (k Key) Check(value string) (string, error) {
	v := strings.TrimSpace(value)
	switch k.Type {
	case Duration:
		if v == "" {
			return "", apperr.Field(k.Name, "required", "required")
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return "", apperr.Field(k.Name, "settings.duration", "must be a duration such as 2h, 90m or 48h")
		}
		if d < k.Min || d > k.Max {
			return "", apperr.Field(k.Name, "settings.duration_range", "must be between %v and %v", fmtDuration(k.Min), fmtDuration(k.Max))
		}
	case TimeOfDay:
		if _, err := parseClock(v); err != nil {
			return "", apperr.Field(k.Name, "settings.time_of_day", "must be a time of day such as 10:00")
		}
	case Choice:
		if !slices.Contains(k.Choices, v) {
			return "", apperr.Field(k.Name, "settings.choice", "must be one of %v", strings.Join(k.Choices, ", "))
		}
	case TimeZone:
		// LoadLocation accepts "" and "UTC"/"Local"; only named zones make sense here.
		if v == "" || v == "Local" {
			return "", apperr.Field(k.Name, "settings.time_zone", "must be a time zone name such as Asia/Shanghai")
		}
		if _, err := time.LoadLocation(v); err != nil {
			return "", apperr.Field(k.Name, "settings.time_zone", "must be a time zone name such as Asia/Shanghai")
		}
	case Text:
		if utf8.RuneCountInString(v) > k.MaxLen {
			return "", apperr.Field(k.Name, "settings.too_long", "must be at most %v characters", k.MaxLen)
		}
	default:
		return "", fmt.Errorf("settings: %s has no type", k.Name)
	}
	return v, nil
}

// parseClock reads "HH:MM" as an offset from midnight.
func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("settings: %q is not HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// fmtDuration writes a duration without the trailing zero units ("2h", "1h30m").
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Store reads and writes settings. Reads go to the database every time, so a
// change made on one app instance is seen at once by all of them.
type Store struct {
	db    *storage.DB
	q     storage.Querier
	audit *audit.Log
	now   func() time.Time
}

// New returns the store kept in db; every change is recorded in log (nil
// only in tests of other packages, which never change settings through the
// web). now is the clock (time.Now when nil).
func New(db *storage.DB, log *audit.Log, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, q: db, audit: log, now: now}
}

// With returns a store that reads through q — the caller's transaction — so
// code that already holds a connection does not wait for a second one.
func (s *Store) With(q storage.Querier) *Store {
	c := *s
	c.q = q
	return &c
}

// Value is one setting as shown to an administrator.
type Value struct {
	Key
	Value     string
	IsDefault bool
	UpdatedAt time.Time // zero when never changed
	UpdatedBy string
}

// raw returns the stored value of a known key, or its default.
func (s *Store) raw(ctx context.Context, name string, want Type) (string, error) {
	k, ok := Lookup(name)
	if !ok {
		return "", fmt.Errorf("settings: unknown key %q", name)
	}
	if k.Type != want {
		return "", fmt.Errorf("settings: %q is not of the type asked for", name)
	}
	var v string
	err := s.q.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = $1", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return k.Default, nil
	}
	if err != nil {
		return "", fmt.Errorf("settings: read %s: %w", name, err)
	}
	// Set validates every write; a stored value that fails now was edited
	// by hand or predates a rule change, and guessing would hide it.
	if _, err := k.Check(v); err != nil {
		return "", fmt.Errorf("settings: stored value of %s is invalid: %w", name, err)
	}
	return v, nil
}

// Duration returns a Duration setting.
func (s *Store) Duration(ctx context.Context, name string) (time.Duration, error) {
	v, err := s.raw(ctx, name, Duration)
	if err != nil {
		return 0, err
	}
	return time.ParseDuration(v)
}

// TimeOfDay returns a TimeOfDay setting as the offset from midnight.
func (s *Store) TimeOfDay(ctx context.Context, name string) (time.Duration, error) {
	v, err := s.raw(ctx, name, TimeOfDay)
	if err != nil {
		return 0, err
	}
	return parseClock(v)
}

// String returns a Choice or Text setting.
func (s *Store) String(ctx context.Context, name string) (string, error) {
	k, ok := Lookup(name)
	if !ok {
		return "", fmt.Errorf("settings: unknown key %q", name)
	}
	if k.Type != Choice && k.Type != Text {
		return "", fmt.Errorf("settings: %q is not a text setting", name)
	}
	return s.raw(ctx, name, k.Type)
}

// Location returns the bureau's time zone, in which times are shown and
// daily cut-offs fall.
func (s *Store) Location(ctx context.Context) (*time.Location, error) {
	v, err := s.raw(ctx, BureauTimeZone, TimeZone)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, fmt.Errorf("settings: load time zone %q: %w", v, err)
	}
	return loc, nil
}

// ResponseLevel returns the current emergency response level (LevelNone … LevelI).
func (s *Store) ResponseLevel(ctx context.Context) (string, error) {
	return s.raw(ctx, ResponseLevel, Choice)
}

// All returns every setting with its current value, in display order.
// Only bureau administrators may see the configuration.
func (s *Store) All(ctx context.Context) ([]Value, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.q.QueryContext(ctx, "SELECT key, value, updated_at, updated_by FROM settings")
	if err != nil {
		return nil, fmt.Errorf("settings: list: %w", err)
	}
	defer rows.Close()
	stored := map[string]Value{}
	for rows.Next() {
		var v Value
		var at int64
		if err := rows.Scan(&v.Name, &v.Value, &at, &v.UpdatedBy); err != nil {
			return nil, fmt.Errorf("settings: scan: %w", err)
		}
		v.UpdatedAt = storage.FromMillis(at)
		stored[v.Name] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("settings: list: %w", err)
	}
	out := make([]Value, 0, len(Keys))
	for _, k := range Keys {
		v, ok := stored[k.Name]
		if !ok {
			v = Value{Value: k.Default, IsDefault: true}
		}
		v.Key = k
		out = append(out, v)
	}
	return out, nil
}

// Set changes one setting. See SetAll.
func (s *Store) Set(ctx context.Context, name, value string) error {
	return s.SetAll(ctx, map[string]string{name: value})
}

// SetAll validates every value first — reporting each bad one under its key
// as the field name — and then writes the changed ones in one transaction,
// with one audit entry each. Only bureau administrators may change settings.
func (s *Store) SetAll(ctx context.Context, values map[string]string) error {
	p, err := scope.Require(ctx, scope.BureauAdmin)
	if err != nil {
		return err
	}
	// Settings hold for the whole installation, so changing them needs a
	// bureau-wide scope: a district or city admin, never one scoped to a
	// township, a village or an institution.
	if !p.IsSystem() && (p.InstitutionID != 0 || len(p.RegionCode) > 6) {
		return apperr.New(apperr.Forbidden, "settings hold for the whole bureau; only an administrator of a district or city may change them")
	}
	var problems apperr.Problems
	clean := map[string]string{}
	for name, v := range values {
		k, ok := Lookup(name)
		if !ok {
			problems.Add(name, "settings.unknown", "there is no setting %v", name)
			continue
		}
		c, err := k.Check(v)
		if err != nil {
			problems.AddErr("", err)
			continue
		}
		clean[name] = c
	}
	if err := problems.Err(); err != nil {
		return err
	}
	at := storage.Millis(s.now())
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var entries []audit.Entry
		for _, k := range Keys { // registry order, so audit entries come out the same way every time
			v, ok := clean[k.Name]
			if !ok {
				continue
			}
			old, err := s.With(tx).raw(ctx, k.Name, k.Type)
			if err != nil {
				return err
			}
			if old == v {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
				k.Name, v, at, p.Username); err != nil {
				return fmt.Errorf("settings: write %s: %w", k.Name, err)
			}
			entries = append(entries, audit.Entry{Action: "setting.update", ObjectType: "setting", ObjectID: k.Name,
				Detail: fmt.Sprintf("%s → %s", old, v)})
		}
		if len(entries) == 0 || s.audit == nil {
			return nil
		}
		return s.audit.RecordBatch(ctx, tx, entries)
	})
}

func requireAdmin(ctx context.Context) error {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return err
	}
	return p.Require(scope.BureauAdmin)
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
