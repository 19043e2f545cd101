// Package deadlines is the one engine for time-bound duties (督办, DESIGN.md
// §6): report a positive within 2 hours, recall within hours, investigate
// within 24 hours, send the daily report by the cut-off, rectify by a date,
// store waste under 48 hours, test staff on time. Modules open a deadline in
// the same transaction as the record it is about and meet it when the duty
// is done; one scheduler (Engine.Tick) marks the late ones overdue and then
// escalated; the inbox and the dashboard read them.
package deadlines

import (
	"embed"
	"io/fs"
	"slices"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

//go:embed messages.json templates/*.html
var moduleFiles embed.FS

// Migrations creates the deadlines and deadline_events tables.
var Migrations = storage.Migrations{Module: "deadlines", FS: mustSub(migrationFiles, "migrations")}

// Templates are the deadlines module's pages.
var Templates = web.Templates{FS: moduleFiles, Pattern: "templates/*.html"}

// Messages are the deadlines module's translations.
var Messages = locale.Source{FS: moduleFiles, Name: "messages.json"}

// State is where a deadline stands.
type State string

// The states. A deadline starts open; the scheduler moves it to overdue when
// its due time passes and to escalated when it stays overdue too long; Meet
// moves it from any of those to met.
const (
	Open      State = "open"
	Met       State = "met"
	Overdue   State = "overdue"
	Escalated State = "escalated"
)

// States lists the states in display order.
var States = []State{Open, Overdue, Escalated, Met}

// Unresolved is the filter value meaning open, overdue or escalated — every
// duty still waiting to be done (the inbox's default).
const Unresolved State = "unresolved"

// Kind declares one kind of duty and where its due time comes from.
type Kind struct {
	Code string
	// Duration names the settings key holding how long the duty may take;
	// a deadline opened without a due time is due that long after now.
	Duration string
	// Cutoff names the settings key of a time of day; a deadline opened
	// without a due time is due at the next such time in the bureau's zone.
	Cutoff string
	// With neither Duration nor Cutoff the caller must give the due time
	// (a rectification date set by the inspector, a staff member's next test).
}

// The kinds' codes; modules use these.
const (
	PositiveReport       = "positive_report"
	Recall               = "recall"
	InvestigationCore    = "investigation_core"
	InvestigationInitial = "investigation_initial"
	DailyReport          = "daily_report"
	Rectification        = "rectification"
	WasteStorage         = "waste_storage"
	StaffTest            = "staff_test"
)

// Kinds is every kind of duty, in display order. Labels are the message keys
// "deadlines.kind.<Code>".
var Kinds = []Kind{
	{Code: PositiveReport, Duration: settings.PositiveReport},
	{Code: Recall, Duration: settings.Recall},
	{Code: InvestigationCore, Duration: settings.InvestigationCore},
	{Code: InvestigationInitial, Duration: settings.InvestigationInitial},
	{Code: DailyReport, Cutoff: settings.DailyReportCutoff},
	{Code: Rectification},
	{Code: WasteStorage, Duration: settings.WasteStorage},
	{Code: StaffTest},
}

// LookupKind returns the declaration of a kind.
func LookupKind(code string) (Kind, bool) {
	i := slices.IndexFunc(Kinds, func(k Kind) bool { return k.Code == code })
	if i < 0 {
		return Kind{}, false
	}
	return Kinds[i], true
}

// Deadline is one duty with a due time.
type Deadline struct {
	ID          int64
	Kind        string
	SubjectType string // what the duty is about: "tube", "case", "inspection_finding" …
	SubjectID   string
	// Title says what is due in a few words, with no personal data: it shows
	// in every inbox and export in scope.
	Title         string
	RegionCode    string
	InstitutionID int64 // the owning institution; 0 when the duty is the region's
	// DueAt is when the duty is due; when opening, the zero time means
	// "from the kind's setting".
	DueAt       time.Time
	State       State
	MetAt       time.Time
	OverdueAt   time.Time
	EscalatedAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// DedupeKey makes Open idempotent; empty means kind/subject_type/subject_id,
	// so there is one deadline of a kind per subject. A duty that recurs for
	// one subject (a daily report) puts the period in SubjectID, never only in
	// the key: Meet meets every deadline of the kind for the subject, so a
	// period kept only in the key would be met by another period's report.
	DedupeKey string
}

// Late reports whether the duty was met after its due time.
func (d Deadline) Late() bool { return d.State == Met && d.MetAt.After(d.DueAt) }

// Event is one state change of a deadline.
type Event struct {
	From       State
	To         State
	At         time.Time
	ByInstance string
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
