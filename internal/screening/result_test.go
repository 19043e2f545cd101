package screening

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

// counters reads a region's coverage counters of a campaign.
func counters(f *fixture, campaignID int64, region string) (sampled, resulted, positive int) {
	f.t.Helper()
	err := f.db.QueryRow("SELECT sampled, resulted, positive FROM coverage WHERE campaign_id = $1 AND region_code = $2", campaignID, region).
		Scan(&sampled, &resulted, &positive)
	if err != nil && err != sql.ErrNoRows {
		f.t.Fatalf("read coverage: %v", err)
	}
	return
}

// tubeDeadlines reads a tube's deadlines as "kind owner due-offset".
func tubeDeadlines(f *fixture, tubeID int64) []string {
	f.t.Helper()
	rows, err := f.db.Query("SELECT kind, COALESCE(institution_id, 0), due_at, region_code, title FROM deadlines WHERE subject_type = 'tube' AND subject_id = $1 ORDER BY kind",
		strconv.FormatInt(tubeID, 10))
	if err != nil {
		f.t.Fatalf("read deadlines: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, region, title string
		var owner, due int64
		if err := rows.Scan(&kind, &owner, &due, &region, &title); err != nil {
			f.t.Fatal(err)
		}
		if region != townshipA || strings.Contains(title, "王") {
			f.t.Errorf("deadline %s: region %s, title %q", kind, region, title)
		}
		out = append(out, fmt.Sprintf("%s %d %v", kind, owner, storage.FromMillis(due).Sub(f.clock.Now())))
	}
	return out
}

// recallReasons reads the reasons of a tube's recalls, checking that each
// is placed by its member's residence, at the point, to notify.
func recallReasons(f *fixture, tube seeded, homes []string) []string {
	f.t.Helper()
	rows, err := f.db.Query("SELECT specimen_id, region_code, institution_id, reason, state, due_at FROM recalls WHERE tube_id = $1 ORDER BY specimen_id", tube.id)
	if err != nil {
		f.t.Fatalf("read recalls: %v", err)
	}
	defer rows.Close()
	var out []string
	for i := 0; rows.Next(); i++ {
		var specimen, inst, due int64
		var region, reason, state string
		if err := rows.Scan(&specimen, &region, &inst, &reason, &state, &due); err != nil {
			f.t.Fatal(err)
		}
		if specimen != tube.specimens[i] || region != homes[i] || inst != f.pointInstA || state != "to_notify" ||
			storage.FromMillis(due) != f.clock.Now().Add(12*time.Hour) {
			f.t.Errorf("recall %d of %s: specimen %d region %s institution %d state %s due %v", i, tube.code, specimen, region, inst, state, storage.FromMillis(due))
		}
		out = append(out, reason)
	}
	return out
}

// TestResultRules is DESIGN.md §5.1's result rules, result by pool kind.
func TestResultRules(t *testing.T) {
	f := newFixture(t)
	f.institution(regions.CDC, "温州市疾病预防控制中心", "3303") // a wider CDC: the district's is responsible
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	pooled := append(repeat(villageA, 6), repeat(villageB, 4)...)
	single := []string{villageB}
	both := func(r Result) []string { return append(repeat(string(r), 6), repeat(string(r), 4)...) }
	recallKinds := func(report bool) []string {
		out := []string{}
		if report {
			out = append(out, fmt.Sprintf("%s %d 2h0m0s", deadlines.PositiveReport, f.cdcID))
		}
		return append(out, fmt.Sprintf("%s %d 12h0m0s", deadlines.Recall, f.pointInstA))
	}
	tests := []struct {
		name        string
		result      Result
		homes       []string
		recalls     []string
		deadlines   []string
		preliminary int
		// coverage deltas per residence: resulted, positive
		resultedA, resultedB, positiveA, positiveB int
		uncounted                                  bool
	}{
		{"negative pooled", Negative, pooled, nil, nil, 0, 6, 4, 0, 0, false},
		{"negative single", Negative, single, nil, nil, 0, 0, 1, 0, 0, false},
		{"positive pooled", Positive, pooled, both(Positive), recallKinds(true), 0, 6, 4, 6, 4, false},
		{"positive single", Positive, single, []string{"positive"}, recallKinds(true), 1, 0, 1, 0, 1, false},
		{"suspicious pooled", Suspicious, pooled, both(Suspicious), recallKinds(true), 0, 6, 4, 0, 0, false},
		{"suspicious single", Suspicious, single, []string{"suspicious"}, recallKinds(true), 0, 0, 1, 0, 0, false},
		{"invalid pooled", Invalid, pooled, both(Invalid), recallKinds(false), 0, 0, 0, 0, 0, true},
		{"invalid single", Invalid, single, []string{"invalid"}, recallKinds(false), 0, 0, 0, 0, 0, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := fmt.Sprintf("T%04d", i)
			tube := seedTube(f, c, pt, code, len(tt.homes), tt.homes...)
			handTo(f, f.labID, code)
			_, resA0, posA0 := counters(f, c, villageA)
			_, resB0, posB0 := counters(f, c, villageB)
			ct1, ct2 := 31.5, 33.0
			tested := f.clock.Now().Add(-90 * time.Minute) // 1h30 after the first sample: bucket 6
			in := ResultInput{TubeCode: code, Result: tt.result, CtORF1ab: &ct1, CtN: &ct2, TestedAt: tested.Format(time.RFC3339)}

			rep, err := f.svc.RecordResults(f.lab(), []ResultInput{in})
			if err != nil {
				t.Fatalf("record: %v", err)
			}
			if rep.Accepted != 1 || rep.Unchanged != 0 || len(rep.Rejected) != 0 || rep.Recalls != len(tt.recalls) {
				t.Fatalf("report = %+v", rep)
			}
			if got := slices.Contains(rep.PositiveTubes, code); got != (tt.result == Positive) {
				t.Errorf("positive_tubes = %v", rep.PositiveTubes)
			}
			var state, result string
			var storedCt1, storedCt2 float64
			var testedAt, resultedBy int64
			if err := f.db.QueryRow("SELECT state, result, ct_orf1ab, ct_n, tested_at, resulted_by FROM tubes WHERE id = $1", tube.id).
				Scan(&state, &result, &storedCt1, &storedCt2, &testedAt, &resultedBy); err != nil {
				t.Fatal(err)
			}
			if state != "resulted" || result != string(tt.result) || storedCt1 != ct1 || storedCt2 != ct2 ||
				testedAt != storage.Millis(tested) || resultedBy != 4 {
				t.Errorf("tube: %s %s %v %v %d by %d", state, result, storedCt1, storedCt2, testedAt, resultedBy)
			}
			if got := recallReasons(f, tube, tt.homes); !slices.Equal(got, tt.recalls) {
				t.Errorf("recalls %v, want %v", got, tt.recalls)
			}
			if got := tubeDeadlines(f, tube.id); !slices.Equal(got, tt.deadlines) {
				t.Errorf("deadlines %v, want %v", got, tt.deadlines)
			}
			var prelim int
			if err := f.db.QueryRow("SELECT COUNT(*) FROM preliminary_positives WHERE tube_id = $1 AND specimen_id = $2 AND ct_orf1ab = $3",
				tube.id, tube.specimens[0], ct1).Scan(&prelim); err != nil {
				t.Fatal(err)
			}
			if prelim != tt.preliminary {
				t.Errorf("%d preliminary positives, want %d", prelim, tt.preliminary)
			}
			_, resA, posA := counters(f, c, villageA)
			_, resB, posB := counters(f, c, villageB)
			if resA-resA0 != tt.resultedA || resB-resB0 != tt.resultedB || posA-posA0 != tt.positiveA || posB-posB0 != tt.positiveB {
				t.Errorf("coverage deltas: resulted A %d B %d, positive A %d B %d", resA-resA0, resB-resB0, posA-posA0, posB-posB0)
			}
			var counted, places int
			if err := f.db.QueryRow("SELECT COUNT(*) FROM specimens WHERE tube_id = $1 AND counted = TRUE", tube.id).Scan(&counted); err != nil {
				t.Fatal(err)
			}
			if err := f.db.QueryRow("SELECT COUNT(*) FROM campaign_persons cp JOIN specimens s ON s.id = cp.counted_specimen_id WHERE s.tube_id = $1",
				tube.id).Scan(&places); err != nil {
				t.Fatal(err)
			}
			if tt.uncounted != (counted == 0 && places == 0) || (!tt.uncounted && (counted != len(tt.homes) || places != len(tt.homes))) {
				t.Errorf("counted specimens %d, counted places %d", counted, places)
			}

			// The same result again is accepted and changes nothing.
			before := snapshot(f)
			rep, err = f.svc.RecordResults(f.lab(), []ResultInput{in})
			if err != nil || rep.Accepted != 1 || rep.Unchanged != 1 || len(rep.Rejected) != 0 || rep.Recalls != 0 {
				t.Fatalf("repeat: %+v, %v", rep, err)
			}
			if after := snapshot(f); after != before {
				t.Errorf("repeat changed %s into %s", before, after)
			}
			// A different one is rejected and changes nothing either.
			other := in
			other.Result = Positive
			if tt.result == Positive {
				other.Result = Negative
			}
			rep, err = f.svc.RecordResults(f.lab(), []ResultInput{other})
			if err != nil || rep.Accepted != 0 || len(rep.Rejected) != 1 || rep.Rejected[0].Code != CodeTubeAlreadyResulted || rep.Rejected[0].Row != 1 {
				t.Fatalf("conflicting repeat: %+v, %v", rep, err)
			}
			if after := snapshot(f); after != before {
				t.Errorf("conflicting repeat changed %s into %s", before, after)
			}
			_, err = f.svc.RecordResult(f.lab(), code, other)
			wantErr(t, err, apperr.Conflict, "result", CodeTubeAlreadyResulted)
		})
	}
	// Every tube was tested 1h30 after its first sample.
	var buckets, tubes int
	if err := f.db.QueryRow("SELECT COUNT(*), SUM(tubes) FROM turnaround WHERE campaign_id = $1 AND region_code = $2 AND bucket = 6", c, townshipA).
		Scan(&buckets, &tubes); err != nil || buckets != 1 || tubes != len(tests) {
		t.Errorf("turnaround: %d rows, %d tubes (%v)", buckets, tubes, err)
	}
	var entries int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'tube.result'").Scan(&entries); err != nil || entries != len(tests) {
		t.Errorf("%d result entries (%v), want %d", entries, err, len(tests))
	}
}

// snapshot summarises every table a result writes.
func snapshot(f *fixture) string {
	f.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT COUNT(*) FROM recalls", "SELECT COUNT(*) FROM deadlines", "SELECT COUNT(*) FROM preliminary_positives",
		"SELECT COALESCE(SUM(resulted), 0) FROM coverage", "SELECT COALESCE(SUM(positive), 0) FROM coverage",
		"SELECT COALESCE(SUM(tubes), 0) FROM turnaround", "SELECT COUNT(*) FROM specimens WHERE counted = TRUE",
		"SELECT COUNT(*) FROM tubes WHERE state = 'resulted'", "SELECT COUNT(*) FROM audit_log WHERE action = 'tube.result'",
	} {
		var n int64
		if err := f.db.QueryRow(q).Scan(&n); err != nil {
			f.t.Fatalf("%s: %v", q, err)
		}
		fmt.Fprintf(&b, "%d ", n)
	}
	return b.String()
}

func TestResultTurnaroundBuckets(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{{0, 6}, {6 * time.Hour, 6}, {6*time.Hour + time.Millisecond, 12}, {24 * time.Hour, 24}, {47 * time.Hour, 48}, {49 * time.Hour, 0}} {
		if got := turnaroundBucket(tt.d); got != tt.want {
			t.Errorf("bucket(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestResultValidation(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	seedTube(f, c, pt, "T1", 10, repeat(villageA, 10)...)
	seedTube(f, c, pt, "TOPEN", 10, villageA)
	handTo(f, f.labID, "T1")
	ok := f.clock.Now().Add(-time.Hour).Format("2006-01-02 15:04")
	ct := func(v float64) *float64 { return &v }
	tests := []struct {
		name        string
		in          ResultInput
		field, code string
	}{
		{"no tube", ResultInput{Result: Negative, TestedAt: ok}, "tube_code", "required"},
		{"bad tube code", ResultInput{TubeCode: "T 1", Result: Negative, TestedAt: ok}, "tube_code", "tube_code.format"},
		{"unknown result", ResultInput{TubeCode: "T1", Result: "maybe", TestedAt: ok}, "result", CodeResultUnknown},
		{"ct below 0", ResultInput{TubeCode: "T1", Result: Positive, CtORF1ab: ct(-1), TestedAt: ok}, "ct_orf1ab", CodeCtRange},
		{"ct above 50", ResultInput{TubeCode: "T1", Result: Positive, CtN: ct(50.5), TestedAt: ok}, "ct_n", CodeCtRange},
		{"no test time", ResultInput{TubeCode: "T1", Result: Negative}, "tested_at", "required"},
		{"test time unreadable", ResultInput{TubeCode: "T1", Result: Negative, TestedAt: "yesterday"}, "tested_at", CodeTestedAtFormat},
		{"test time in the future", ResultInput{TubeCode: "T1", Result: Negative, TestedAt: f.clock.Now().Add(time.Hour).Format(time.RFC3339)}, "tested_at", CodeTestedAtFuture},
		{"tested before sampling", ResultInput{TubeCode: "T1", Result: Negative, TestedAt: f.clock.Now().Add(-4 * time.Hour).Format(time.RFC3339)}, "tested_at", CodeTestedBeforeSampling},
		{"open tube", ResultInput{TubeCode: "TOPEN", Result: Negative, TestedAt: ok}, "tube_code", CodeTubeNotSealed},
		{"unknown tube", ResultInput{TubeCode: "NOPE", Result: Negative, TestedAt: ok}, "tube_code", CodeTubeUnknown},
	}
	inputs := make([]ResultInput, len(tests))
	for i, tt := range tests {
		inputs[i] = tt.in
	}
	rep, err := f.svc.RecordResults(f.bureauAdmin(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 0 || len(rep.Rejected) != len(tests) {
		t.Fatalf("report = %+v", rep)
	}
	for i, tt := range tests {
		e := rep.Rejected[i]
		if e.Row != i+1 || e.Field != tt.field || e.Code != tt.code {
			t.Errorf("%s: rejection %+v, want row %d %s %s", tt.name, e, i+1, tt.field, tt.code)
		}
	}
	if n := f.count("recalls") + f.count("deadlines"); n != 0 || tubeState(f, "T1") != TubeReceived {
		t.Errorf("rejected results wrote something: %d rows, T1 %s", n, tubeState(f, "T1"))
	}
	// A local time is in the bureau's zone (Asia/Shanghai by default).
	tube, err := f.svc.RecordResult(f.lab(), "t1", ResultInput{Result: Negative, TestedAt: "2025-06-15 09:30"})
	if err != nil || !tube.TestedAt.Equal(time.Date(2025, 6, 15, 1, 30, 0, 0, time.UTC)) {
		t.Fatalf("local test time: %v, %v", tube.TestedAt, err)
	}
	_, err = f.svc.RecordResult(f.lab(), "NOPE", ResultInput{Result: Negative, TestedAt: ok})
	wantErr(t, err, apperr.NotFound, "", "")
	_, err = f.svc.RecordResult(f.bureauAdmin(), "TOPEN", ResultInput{Result: Negative, TestedAt: ok})
	wantErr(t, err, apperr.Conflict, "tube_code", CodeTubeNotSealed)
	_, err = f.svc.RecordResult(f.lab(), "T1", ResultInput{Result: "maybe", TestedAt: ok})
	wantErr(t, err, apperr.Invalid, "result", CodeResultUnknown)
	if _, err := f.svc.RecordResults(f.samplerA(), inputs); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("sampler records results: %v", err)
	}
}

// TestResultLabScope: a lab results only the tubes handed to it.
func TestResultLabScope(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ptB := f.point(c, f.pointInstB, "灵昆采样点", townshipB)
	seedTube(f, c, ptA, "TA", 10, repeat(villageA, 10)...)
	seedTube(f, c, ptB, "TB", 10, repeat(villageB, 10)...)
	handTo(f, f.labID, "TA")
	handTo(f, f.lab2ID, "TB")
	tested := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)

	if _, err := f.svc.Tube(f.lab2(), "TA"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("lab2 reads lab1's tube: %v", err)
	}
	rep, err := f.svc.RecordResults(f.lab2(), []ResultInput{{TubeCode: "TA", Result: Positive, TestedAt: tested}, {TubeCode: "TB", Result: Negative, TestedAt: tested}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 1 || len(rep.Rejected) != 1 || rep.Rejected[0].Row != 1 || rep.Rejected[0].Code != CodeTubeUnknown {
		t.Fatalf("lab2's report = %+v", rep)
	}
	if _, err := f.svc.RecordResult(f.lab2(), "TA", ResultInput{Result: Positive, TestedAt: tested}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("lab2 results lab1's tube: %v", err)
	}
	if st := tubeState(f, "TA"); st != TubeReceived || f.count("recalls") != 0 {
		t.Fatalf("TA is %s with %d recalls after lab2's attempts", st, f.count("recalls"))
	}
	// A bureau admin results any tube in the region; an outsider none.
	rep, err = f.svc.RecordResults(f.outsider(), []ResultInput{{TubeCode: "TA", Result: Negative, TestedAt: tested}})
	if err != nil || rep.Accepted != 0 {
		t.Fatalf("outsider: %+v, %v", rep, err)
	}
	rep, err = f.svc.RecordResults(f.bureauAdmin(), []ResultInput{{TubeCode: "TA", Result: Negative, TestedAt: tested}})
	if err != nil || rep.Accepted != 1 {
		t.Fatalf("bureau admin: %+v, %v", rep, err)
	}
}

func TestImportResults(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	for i := 1; i <= 7; i++ {
		code := fmt.Sprintf("T%d", i)
		seedTube(f, c, pt, code, 10, repeat(villageA, 10)...)
		handTo(f, f.labID, code)
	}
	// The clock reads 10:00 in Beijing; the tubes were first sampled at 07:00.
	file := "tube_code,result,ct_orf1ab,ct_n,tested_at\n" +
		"T1,negative,,,2025-06-15 09:00\n" + // 2
		"T2,bogus,,,2025-06-15 09:00\n" + // 3: no such result
		"T3,positive,60,,2025-06-15 09:00\n" + // 4: Ct out of range
		"NOPE,negative,,,2025-06-15 09:00\n" + // 5: no such tube
		"T4,positive,25.5,27,2025-06-15T09:00:00+08:00\n" + // 6
		"\n" + // 7: blank
		"T5,negative,,,2030-01-01 00:00\n" + // 8: in the future
		"T6,阴性,,,2025-06-15 09:10\n" + // 9
		"T1,positive,,,2025-06-15 09:00\n" + // 10: T1 is negative already
		"T7,negative,abc,,2025-06-15 06:00\n" // 11: Ct unreadable, and tested before sampling
	rep, err := f.svc.ImportResults(f.lab(), strings.NewReader(file), tabular.CSV)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range rep.Rejected {
		rows = append(rows, fmt.Sprintf("%d %s", e.Row, e.Code))
	}
	want := []string{"3 result.unknown", "4 ct.range", "5 tube.unknown", "8 tested_at.future", "10 tube.already_resulted", "11 ct.range"}
	if rep.Accepted != 3 || !slices.Equal(rows, want) || !slices.Equal(rep.PositiveTubes, []string{"T4"}) || rep.RejectedRows() != 6 {
		t.Fatalf("report: accepted %d, rejected %v (want %v), positives %v", rep.Accepted, rows, want, rep.PositiveTubes)
	}
	states := map[string]string{}
	res, err := f.db.Query("SELECT code, COALESCE(result, '') FROM tubes ORDER BY code")
	if err != nil {
		t.Fatal(err)
	}
	for res.Next() {
		var code, result string
		if err := res.Scan(&code, &result); err != nil {
			t.Fatal(err)
		}
		states[code] = result
	}
	res.Close()
	wantStates := map[string]string{"T1": "negative", "T2": "", "T3": "", "T4": "positive", "T5": "", "T6": "negative", "T7": ""}
	for code, r := range wantStates {
		if states[code] != r {
			t.Errorf("%s: result %q, want %q", code, states[code], r)
		}
	}
	// Only T4's members are recalled: nothing of the bad rows was written.
	var recalled int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM recalls r JOIN tubes t ON t.id = r.tube_id WHERE t.code = 'T4'").Scan(&recalled); err != nil {
		t.Fatal(err)
	}
	if recalled != 10 || f.count("recalls") != 10 {
		t.Errorf("recalls: %d of T4, %d in all", recalled, f.count("recalls"))
	}

	// The same file as .xlsx, again: everything good is already there.
	var xlsx bytes.Buffer
	w, err := tabular.NewWriter(&xlsx, tabular.XLSX, "results", []tabular.Column{{Header: "管码"}, {Header: "检测结果"}, {Header: "检测时间"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]any{{"T1", "阴性", "2025-06-15 09:00"}, {"T4", "阳性", "2025-06-15 09:00"}, {"T2", "无效", "2025-06-15 09:20"}} {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err = f.svc.ImportResults(f.lab(), &xlsx, tabular.XLSX)
	if err != nil || rep.Accepted != 3 || rep.Unchanged != 2 || len(rep.Rejected) != 0 || !slices.Equal(rep.InvalidTubes, []string{"T2"}) {
		t.Fatalf("xlsx import: %+v, %v", rep, err)
	}

	// A file without the required columns writes nothing.
	before := snapshot(f)
	_, err = f.svc.ImportResults(f.lab(), strings.NewReader("tube_code,result\nT3,negative\n"), tabular.CSV)
	wantErr(t, err, apperr.Invalid, "file", "missing_columns")
	if after := snapshot(f); after != before {
		t.Errorf("a refused file changed %s into %s", before, after)
	}
	var imports int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'lab_result.import'").Scan(&imports); err != nil || imports != 2 {
		t.Errorf("%d import entries (%v), want 2", imports, err)
	}
}

// TestSplitRepeats: each tube's first row goes with the first rows, its
// later rows with the repeats, each list in file order.
func TestSplitRepeats(t *testing.T) {
	var rows []resultRow
	for i, code := range []string{"A", "B", "A", "C", "B", "A"} {
		rows = append(rows, resultRow{row: i + 1, code: code})
	}
	firsts, repeats := splitRepeats(rows)
	got := func(rs []resultRow) string {
		var b strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&b, "%s%d ", r.code, r.row)
		}
		return b.String()
	}
	if got(firsts) != "A1 B2 C4 " || got(repeats) != "A3 B5 A6 " {
		t.Errorf("firsts %q, repeats %q", got(firsts), got(repeats))
	}
}

// TestResultChunks records more results than one transaction takes.
func TestResultChunks(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(1)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	const n, chunk = 25, 10
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("S%02d", i)
		seedTube(f, c, pt, codes[i], 1, villageA)
		handTo(f, f.labID, codes[i])
	}
	tested := f.clock.Now().Format(time.RFC3339)
	inputs := make([]ResultInput, 0, n+3)
	for i, code := range codes {
		inputs = append(inputs, ResultInput{TubeCode: code, Result: Negative, TestedAt: tested})
		if i == 12 {
			// Row 14, in the second chunk, gives S03 (row 4, the first
			// chunk) another result: the first row wins whichever chunk is
			// written first (PostgreSQL writes two at once).
			inputs = append(inputs, ResultInput{TubeCode: codes[3], Result: Positive, TestedAt: tested})
		}
	}
	// The last rows repeat the first tube: the same result changes nothing
	// and another is a conflict.
	inputs = append(inputs, ResultInput{TubeCode: codes[0], Result: Negative, TestedAt: tested},
		ResultInput{TubeCode: codes[0], Result: Positive, TestedAt: tested})
	rep, err := f.svc.recordResults(f.lab(), inputs, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != n+1 || rep.Unchanged != 1 || len(rep.Rejected) != 2 || rep.Rejected[0].Row != 14 || rep.Rejected[1].Row != n+3 ||
		len(rep.PositiveTubes) != 0 {
		t.Fatalf("accepted %d (%d unchanged), rejected %+v, positive %v", rep.Accepted, rep.Unchanged, rep.Rejected, rep.PositiveTubes)
	}
	var resulted, covered int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM tubes WHERE state = 'resulted' AND result = 'negative'").Scan(&resulted); err != nil || resulted != n {
		t.Errorf("%d tubes resulted (%v), want %d", resulted, err, n)
	}
	if _, covered, _ = counters(f, c, villageA); covered != n {
		t.Errorf("coverage resulted %d, want %d", covered, n)
	}
}

// TestResultRepeatAfterRejection: a tube whose first row is refused takes
// its result from its next good row, and a later row with another result
// is a conflict, even when both later rows are in one chunk.
func TestResultRepeatAfterRejection(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	seedTube(f, c, pt, "R1", 10, repeat(villageA, 10)...)
	handTo(f, f.labID, "R1")
	seedTube(f, c, pt, "R2", 10, repeat(villageA, 10)...)
	handTo(f, f.labID, "R2")
	// The tubes were first sampled at 07:00 Beijing time.
	early, tested := "2025-06-15 06:00", "2025-06-15 09:00"
	rep, err := f.svc.recordResults(f.lab(), []ResultInput{
		{TubeCode: "R1", Result: Negative, TestedAt: early},
		{TubeCode: "R2", Result: Negative, TestedAt: tested},
		{TubeCode: "R1", Result: Positive, TestedAt: tested},
		{TubeCode: "R1", Result: Negative, TestedAt: tested},
		{TubeCode: "R1", Result: Positive, TestedAt: tested},
	}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range rep.Rejected {
		rows = append(rows, fmt.Sprintf("%d %s", e.Row, e.Code))
	}
	want := []string{"1 " + CodeTestedBeforeSampling, "4 " + CodeTubeAlreadyResulted}
	if rep.Accepted != 3 || rep.Unchanged != 1 || !slices.Equal(rows, want) || !slices.Equal(rep.PositiveTubes, []string{"R1"}) {
		t.Fatalf("accepted %d (%d unchanged), rejected %v (want %v), positive %v", rep.Accepted, rep.Unchanged, rows, want, rep.PositiveTubes)
	}
	var result string
	var recalls int
	if err := f.db.QueryRow("SELECT result FROM tubes WHERE code = 'R1'").Scan(&result); err != nil || result != "positive" {
		t.Errorf("R1 is %q (%v), want positive", result, err)
	}
	if err := f.db.QueryRow("SELECT COUNT(*) FROM recalls").Scan(&recalls); err != nil || recalls != 10 {
		t.Errorf("%d recalls (%v), want R1's 10", recalls, err)
	}
	if _, resulted, positive := counters(f, c, villageA); resulted != 20 || positive != 10 {
		t.Errorf("coverage resulted %d, positive %d; want 20 and 10", resulted, positive)
	}
}

// BenchmarkRecordResults records a lab's day in chunks: 10,000 tubes of 10
// members, 0.1% positive (10 tubes, 100 recalls), per iteration.
func BenchmarkRecordResults(b *testing.B) {
	// An ordinary batch of a lab's results: 0.1% of tubes positive.
	b.Run("ordinary", func(b *testing.B) { benchmarkRecordResults(b, resultBench{tubes: 10000, positiveEvery: 1000}) })
	// The bad day: 25,000 positive 10-in-1 tubes (0.1% of 25
	// million people), every member recalled; the target is 20 s.
	b.Run("positive-day", func(b *testing.B) { benchmarkRecordResults(b, resultBench{tubes: 25000, positiveEvery: 1}) })
	// A fifth of the million, over 2 million specimens: does the
	// rate hold as the tables grow? (Seeding takes a while; run it alone.)
	b.Run("large", func(b *testing.B) {
		benchmarkRecordResults(b, resultBench{tubes: 200000, positiveEvery: 1000, csv: true})
	})
	// The target: 1,000,000 results in one CSV file through the
	// import (parse, check, record), over 10 million specimens, ≤ 30 s on
	// PostgreSQL. Seeding takes minutes and gigabytes, so it runs only when
	// SHAOBING_BENCH_MILLION=1.
	b.Run("million", func(b *testing.B) {
		if os.Getenv("SHAOBING_BENCH_MILLION") != "1" {
			b.Skip("set SHAOBING_BENCH_MILLION=1 to seed 10 million specimens and import 1,000,000 results")
		}
		benchmarkRecordResults(b, resultBench{tubes: 1000000, positiveEvery: 1000, csv: true})
	})
}

// resultBench is one results benchmark: tubes received tubes of 10, every
// positiveEvery-th of them positive, recorded through RecordResults or,
// with csv, imported from a CSV file.
type resultBench struct {
	tubes, positiveEvery int
	csv                  bool
}

// benchmarkRecordResults runs rb and reports results/s. With
// SHAOBING_BENCH_VACUUM=1 the seeded tables are vacuumed, analysed and
// checkpointed before each run on PostgreSQL — the state autovacuum and the
// checkpointer leave them in during the hours between sampling and testing —
// instead of read right after their insertion (statistics of empty tables,
// no hint bits set) while the checkpointer still writes the seeding out.
func benchmarkRecordResults(b *testing.B, rb resultBench) {
	const members = 10
	tubes, positiveEvery := rb.tubes, rb.positiveEvery
	tree, err := loadTree()
	if err != nil {
		b.Fatal(err)
	}
	db := storagetest.Open(b, regions.Migrations, audit.Migrations, settings.Migrations, deadlines.Migrations, people.Migrations, Migrations)
	c := &clock{}
	c.Set(start)
	log := audit.New(db, c.Now)
	set := settings.New(db, log, c.Now)
	svc := New(Deps{DB: db, Tree: tree, People: people.NewRegistry(db, tree, log, c.Now), Institutions: regions.NewInstitutions(db, tree, log, c.Now),
		Audit: log, Deadlines: deadlines.New(db, set, c.Now), Settings: set, Now: c.Now}, Options{})
	b.Cleanup(svc.Close)
	ctx := context.Background()
	var labID, pointInst, campaignID, pointID int64
	at := storage.Millis(start.Add(-3 * time.Hour))
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			dst  *int64
			sql  string
			args []any
		}{
			{&labID, "INSERT INTO institutions (name, type, region_code, created_at, updated_at) VALUES ('实验室', 'lab', $1, $2, $2) RETURNING id", []any{district, at}},
			{new(int64), "INSERT INTO institutions (name, type, region_code, created_at, updated_at) VALUES ('疾控', 'cdc', $1, $2, $2) RETURNING id", []any{district, at}},
			{&pointInst, "INSERT INTO institutions (name, type, region_code, created_at, updated_at) VALUES ('采样点', 'sampling_point', $1, $2, $2) RETURNING id", []any{townshipA, at}},
			{&campaignID, `INSERT INTO campaigns (name, pathogen, pool_size, starts_at, ends_at, results_due_at, region_code, created_at, updated_at)
				VALUES ('全员核酸', 'sars_cov_2', 10, $1, $2, $2, $3, $1, $1) RETURNING id`, []any{at - 3600000, at + 86400000, district}},
		} {
			if err := tx.QueryRow(q.sql, q.args...).Scan(q.dst); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(`INSERT INTO sampling_points (campaign_id, institution_id, name, region_code, created_at)
			VALUES ($1, $2, '采样点', $3, $4) RETURNING id`, campaignID, pointInst, townshipA, at).Scan(&pointID); err != nil {
			return err
		}
		return seedBenchTubes(tx, campaignID, pointID, pointInst, labID, tubes, members, at)
	})
	if err != nil {
		b.Fatal(err)
	}
	lab := scope.WithPrincipal(ctx, &scope.Principal{UserID: 4, Username: "lab", Roles: []scope.Role{scope.Lab}, RegionCode: district, InstitutionID: labID})
	inputs := make([]ResultInput, tubes)
	tested := start.Add(-time.Hour).Format(time.RFC3339)
	for i := range inputs {
		inputs[i] = ResultInput{TubeCode: fmt.Sprintf("B%d", 1000000+i), Result: Negative, TestedAt: tested}
		if i%positiveEvery == positiveEvery-1 {
			ct := 28.0
			inputs[i].Result, inputs[i].CtORF1ab = Positive, &ct
		}
	}
	var file []byte
	if rb.csv {
		var buf bytes.Buffer
		buf.WriteString(strings.Join(ResultHeaders, ",") + "\n")
		for _, in := range inputs {
			ct := ""
			if in.CtORF1ab != nil {
				ct = strconv.FormatFloat(*in.CtORF1ab, 'f', -1, 64)
			}
			fmt.Fprintf(&buf, "%s,%s,%s,,%s\n", in.TubeCode, in.Result, ct, in.TestedAt)
		}
		file, inputs = buf.Bytes(), nil
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if err := resetBenchTubes(db); err != nil {
			b.Fatal(err)
		}
		if os.Getenv("SHAOBING_BENCH_VACUUM") == "1" && db.Dialect == storage.Postgres {
			for _, q := range []string{"VACUUM ANALYZE", "CHECKPOINT"} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		var rep ResultReport
		if rb.csv {
			rep, err = svc.ImportResults(lab, bytes.NewReader(file), tabular.CSV)
		} else {
			rep, err = svc.RecordResults(lab, inputs)
		}
		if err != nil || rep.Accepted != tubes || rep.Recalls != tubes/positiveEvery*members {
			b.Fatalf("report %d accepted, %d recalls: %v", rep.Accepted, rep.Recalls, err)
		}
	}
	b.ReportMetric(float64(b.N*tubes)/b.Elapsed().Seconds(), "results/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
}

// seedBenchTubes inserts received tubes full of counted specimens, with
// one set-based statement per table.
func seedBenchTubes(tx *sql.Tx, campaignID, pointID, pointInst, labID int64, tubes, members int, at int64) error {
	const count = "WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1) "
	// Person i lives in village A when i is even, B when odd, and goes into
	// tube i / members: each tube's members alternate A, B, A, B …
	// (members is even).
	if _, err := tx.Exec(count+`INSERT INTO tubes (code, campaign_id, sampling_point_id, institution_id, region_code, capacity, members,
		state, lab_id, opened_at, first_sampled_at, counted_regions) SELECT 'B' || (1000000 + i), $2, $3, $4, $5, $6, $6, 'received', $7, $8, $8, $9 FROM n`,
		tubes-1, campaignID, pointID, pointInst, townshipA, members, labID, at, strings.Repeat(villageA+" "+villageB+" ", members/2)); err != nil {
		return fmt.Errorf("seed tubes: %w", err)
	}
	if _, err := tx.Exec(count+`INSERT INTO persons (id_type, id_number, name, phone, region_code, created_at, updated_at)
		SELECT 'other', 'P' || (10000000 + i), '张三', '13912345678', CASE WHEN i % 2 = 0 THEN $2 ELSE $3 END, $4, $4 FROM n`,
		tubes*members-1, villageA, villageB, at); err != nil {
		return fmt.Errorf("seed persons: %w", err)
	}
	var firstTube, firstPerson int64
	if err := tx.QueryRow("SELECT (SELECT MIN(id) FROM tubes), (SELECT MIN(id) FROM persons)").Scan(&firstTube, &firstPerson); err != nil {
		return err
	}
	// Person i goes into tube i / members.
	if _, err := tx.Exec(`INSERT INTO specimens (client_id, body_hash, campaign_id, sampling_point_id, tube_id, person_id, region_code,
		institution_id, counted, sampled_at, created_at) SELECT 'b-' || p.id, 'x', $1, $2, $3 + (p.id - $4) / $5, p.id, p.region_code, $6, TRUE, $7, $7
		FROM persons p ORDER BY p.id`, campaignID, pointID, firstTube, firstPerson, members, pointInst, at); err != nil {
		return fmt.Errorf("seed specimens: %w", err)
	}
	if _, err := tx.Exec(`INSERT INTO campaign_persons (campaign_id, person_id, region_code, counted_specimen_id, first_sampled_at)
		SELECT campaign_id, person_id, region_code, id, sampled_at FROM specimens`); err != nil {
		return fmt.Errorf("seed campaign persons: %w", err)
	}
	if _, err := tx.Exec(`INSERT INTO coverage (campaign_id, region_code, sampled) SELECT campaign_id, region_code, COUNT(*) FROM campaign_persons
		GROUP BY campaign_id, region_code`); err != nil {
		return fmt.Errorf("seed coverage: %w", err)
	}
	return nil
}

// resetBenchTubes takes the results back off the tubes, so each iteration
// records them anew.
func resetBenchTubes(db *storage.DB) error {
	return db.InTx(context.Background(), func(tx *sql.Tx) error {
		for _, q := range []string{
			// Only the tubes a run changed: rewriting all of them would leave
			// every tube a dead version and its page dirty in memory.
			`UPDATE tubes SET state = 'received', result = NULL, ct_orf1ab = NULL, ct_n = NULL, tested_at = NULL, resulted_at = NULL, resulted_by = NULL
				WHERE state <> 'received'`,
			"DELETE FROM recalls", "DELETE FROM preliminary_positives", "DELETE FROM deadline_events", "DELETE FROM deadlines",
			"UPDATE coverage SET resulted = 0, positive = 0", "DELETE FROM turnaround",
		} {
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
}

// resultRoutes are the routes of tubes, handover, results, recalls and
// positive reports, as internal/server/routes.go lists them.
func resultRoutes(mux interface{ Handle(string, http.Handler) }, shell *web.Shell, h *Handlers) {
	mux.Handle("GET /screening/tubes", shell.Page(h.TubeFind))
	mux.Handle("GET /screening/tubes/{code}", shell.Page(h.TubePage))
	mux.Handle("POST /screening/tubes/{code}/seal", shell.Page(h.TubeSealSubmit))
	mux.Handle("POST /screening/tubes/{code}/report", shell.Page(h.TubeReportSubmit))
	mux.Handle("GET /screening/handover", shell.Page(h.HandoverPage))
	mux.Handle("POST /screening/handover", shell.Page(h.HandoverSubmit))
	mux.Handle("GET /screening/batches/{code}", shell.Page(h.BatchPage))
	mux.Handle("POST /screening/batches/{code}/receive", shell.Page(h.BatchReceiveSubmit))
	mux.Handle("GET /screening/lab", shell.Page(h.LabPage))
	mux.Handle("POST /screening/lab/receive", shell.Page(h.LabReceive))
	mux.Handle("POST /screening/lab/results", shell.Page(h.LabResult))
	mux.Handle("POST /screening/lab/import", shell.Page(h.LabImport))
	mux.Handle("GET /screening/recalls", shell.Page(h.RecallsPage))
	mux.Handle("GET /screening/recalls/export", shell.Page(h.RecallsExport))
	mux.Handle("POST /screening/recalls/{id}/notify", shell.Page(h.RecallNotifySubmit))
	mux.Handle("GET /screening/positives", shell.Page(h.PositivesPage))

	mux.Handle("GET /api/v1/tubes", shell.API(h.APITubeList))
	mux.Handle("GET /api/v1/tubes/{code}", shell.API(h.APITubeGet))
	mux.Handle("POST /api/v1/tubes/{code}/seal", shell.API(h.APITubeSeal))
	mux.Handle("POST /api/v1/tubes/{code}/result", shell.API(h.APITubeResult))
	mux.Handle("POST /api/v1/tubes/{code}/report", shell.API(h.APITubeReport))
	mux.Handle("POST /api/v1/batches", shell.API(h.APIBatchCreate))
	mux.Handle("GET /api/v1/batches/{code}", shell.API(h.APIBatchGet))
	mux.Handle("POST /api/v1/batches/{code}/receive", shell.API(h.APIBatchReceive))
	mux.Handle("POST /api/v1/lab-results", shell.API(h.APILabResults))
	mux.Handle("POST /api/v1/lab-results/import", shell.API(h.APILabResultsImport))
	mux.Handle("GET /api/v1/recalls", shell.API(h.APIRecallList))
	mux.Handle("GET /api/v1/recalls/export", shell.API(h.RecallsExport))
	mux.Handle("POST /api/v1/recalls/{id}/notify", shell.API(h.APIRecallNotify))
}

// resultsServer serves the result routes over a fresh fixture, with every
// message file of the package (a key defined twice fails the load), as the
// fixture's principals by name.
func resultsServer(t *testing.T) (*fixture, *httptest.Server) {
	t.Helper()
	f := newFixture(t)
	msgs := []locale.Source{deadlines.Messages, tabular.Messages}
	names, err := filepath.Glob("messages*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		msgs = append(msgs, locale.Source{FS: os.DirFS("."), Name: name})
	}
	shell := webtest.Shell(t, time.FixedZone("CST", 8*3600), msgs, Templates)
	shell.Now = f.clock.Now
	mux := http.NewServeMux()
	resultRoutes(mux, shell, NewHandlers(shell, f.svc))
	users := map[string]*scope.Principal{}
	for name, ctx := range map[string]context.Context{
		"admin": f.bureauAdmin(), "sampler": f.samplerA(), "samplerB": f.samplerB(), "lab": f.lab(), "lab2": f.lab2(),
		"staffA": f.townshipStaffA(), "staffB": f.townshipStaffB(), "cdc": f.epidemiologist(),
	} {
		p, err := scope.FromContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = p
	}
	return f, webtest.Serve(t, mux, users)
}

// untranslated finds message keys shown as text: a key the catalog lacks.
var untranslated = regexp.MustCompile(`\b(screening|deadlines|common|error|notice|people)\.[a-z_]+(\.[a-z_]+)*\b`)

// page fetches a page as user and checks its status, that it has every
// wanted text and that no message key is left untranslated.
func page(t *testing.T, srv *httptest.Server, user, path string, status int, want ...string) string {
	t.Helper()
	got, body, _ := webtest.Do(t, srv, user, "GET", path, "", nil)
	if got != status {
		t.Fatalf("GET %s as %s: %d, want %d: %.800s", path, user, got, status, body)
	}
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("GET %s as %s lacks %q", path, user, s)
		}
	}
	if m := untranslated.FindString(body); m != "" {
		t.Errorf("GET %s as %s shows the key %q", path, user, m)
	}
	return body
}

// send sends a request with a body of the given type and decodes a JSON
// answer into out when the status is below 300.
func send(t *testing.T, srv *httptest.Server, user, method, path, ct, body string, out any) (int, string, http.Header) {
	t.Helper()
	status, text, hdr := webtest.Do(t, srv, user, method, path, ct, strings.NewReader(body))
	if out != nil && status < 300 {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, text)
		}
	}
	return status, text, hdr
}

func TestResultsAPI(t *testing.T) {
	f, srv := resultsServer(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	seedTube(f, c, ptA, "T1", 10, repeat(villageA, 10)...)
	seedTube(f, c, ptA, "T2", 10, repeat(villageB, 10)...)
	seedTube(f, c, ptA, "T3", 10, villageA, villageA)
	const js = "application/json"

	// The point seals and hands over.
	var tube TubeJSON
	if status, body, _ := send(t, srv, "sampler", "POST", "/api/v1/tubes/T3/seal", "", "", &tube); status != 200 || tube.State != TubeSealed || tube.Result != nil {
		t.Fatalf("seal: %d %s", status, body)
	}
	if status, _, _ := send(t, srv, "samplerB", "POST", "/api/v1/tubes/T3/seal", "", "", nil); status != 404 {
		t.Fatalf("sampler B seals: %d", status)
	}
	var batch BatchJSON
	status, body, hdr := send(t, srv, "sampler", "POST", "/api/v1/batches", js, fmt.Sprintf(`{"code":"BOX1","lab_id":%d,"tube_codes":["T1","T2","T3"]}`, f.labID), &batch)
	if status != 201 || hdr.Get("Location") != "/api/v1/batches/BOX1" || batch.TubeCount != 3 || batch.SpecimenCount != 22 || batch.Lab.ID != f.labID {
		t.Fatalf("create batch: %d %s", status, body)
	}
	for _, tt := range []struct {
		body string
		want int
	}{
		{fmt.Sprintf(`{"code":"BOX1","lab_id":%d,"tube_codes":["T1","T2","T3"]}`, f.labID), 200},
		{fmt.Sprintf(`{"code":"BOX1","lab_id":%d,"tube_codes":["T1"]}`, f.labID), 409},
		{`{"code":"BOX2","lab_id":0,"tube_codes":[]}`, 422},
		{`{"code":"BOX2","lab_id":"x"}`, 422},
		{`{"code":"BOX2","box":1}`, 400},
		{`{"code":`, 400},
	} {
		if status, body, _ := send(t, srv, "sampler", "POST", "/api/v1/batches", js, tt.body, nil); status != tt.want {
			t.Errorf("POST /api/v1/batches %s: %d, want %d: %s", tt.body, status, tt.want, body)
		}
	}
	if status, _, _ := send(t, srv, "lab2", "POST", "/api/v1/batches/BOX1/receive", "", "", nil); status != 404 {
		t.Errorf("lab2 receives: %d", status)
	}
	if status, body, _ := send(t, srv, "lab", "POST", "/api/v1/batches/box1/receive", "", "", &batch); status != 200 || batch.State != BatchReceived || batch.ReceivedAt == nil {
		t.Fatalf("receive: %d %s", status, body)
	}
	var tubes tubeListJSON
	if status, body, _ := send(t, srv, "lab", "GET", "/api/v1/tubes?state=received", "", "", &tubes); status != 200 || len(tubes.Items) != 3 {
		t.Fatalf("lab's received tubes: %d %s", status, body)
	}
	if status, body, _ := send(t, srv, "lab", "GET", fmt.Sprintf("/api/v1/tubes?state=received&lab_id=%d", f.labID), "", "", &tubes); status != 200 || len(tubes.Items) != 3 {
		t.Fatalf("lab's received tubes by lab_id: %d %s", status, body)
	}
	if status, body, _ := send(t, srv, "lab", "GET", "/api/v1/tubes?lab_id=x1", "", "", nil); status != 422 || !strings.Contains(body, "lab_id") {
		t.Fatalf("malformed lab_id: %d %s", status, body)
	}

	// The lab results them: a list, a file, one tube.
	var rep ResultReport
	status, body, _ = send(t, srv, "lab", "POST", "/api/v1/lab-results", js,
		`{"results":[{"tube_code":"T1","result":"positive","ct_orf1ab":28.5,"ct_n":null,"tested_at":"2025-06-15T09:00:00+08:00"},
		{"tube_code":"T9","result":"negative","tested_at":"2025-06-15T09:00:00+08:00"}]}`, &rep)
	if status != 200 || rep.Accepted != 1 || len(rep.Rejected) != 1 || rep.Rejected[0].Row != 2 || !slices.Equal(rep.PositiveTubes, []string{"T1"}) || rep.Recalls != 10 {
		t.Fatalf("lab results: %d %s", status, body)
	}
	if !strings.Contains(body, `"rejected":[{"row":2,"field":"tube_code","code":"tube.unknown"`) {
		t.Errorf("rejection as sent: %s", body)
	}
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"results":[]}`, 422},
		{`{"results":[{"tube_code":"T2","result":"negative","tested_at":"2025-06-15 09:00","lab":"x"}]}`, 400},
		{`{"results":[{"tube_code":"T2","result":"negative","ct_n":"high","tested_at":"2025-06-15 09:00"}]}`, 422},
		{`[]`, 422},
	} {
		if status, body, _ := send(t, srv, "lab", "POST", "/api/v1/lab-results", js, tt.body, nil); status != tt.want {
			t.Errorf("POST /api/v1/lab-results %s: %d, want %d: %s", tt.body, status, tt.want, body)
		}
	}
	if status, _, _ := send(t, srv, "sampler", "POST", "/api/v1/lab-results", js, `{"results":[]}`, nil); status != 403 {
		t.Errorf("sampler posts results: %d", status)
	}
	status, body, _ = send(t, srv, "lab", "POST", "/api/v1/lab-results/import", "text/csv",
		"tube_code,result,ct_orf1ab,ct_n,tested_at\nT2,negative,,,2025-06-15 09:00\nT3,maybe,,,2025-06-15 09:00\n", &rep)
	if status != 200 || rep.Accepted != 1 || len(rep.Rejected) != 1 || rep.Rejected[0].Row != 3 || rep.Rejected[0].Field != "result" {
		t.Fatalf("import: %d %s", status, body)
	}
	if status, body, _ := send(t, srv, "lab", "POST", "/api/v1/lab-results/import", "text/csv", "tube_code\nT3\n", nil); status != 422 || !strings.Contains(body, "missing_columns") {
		t.Errorf("import without columns: %d %s", status, body)
	}
	if status, body, _ := send(t, srv, "lab", "POST", "/api/v1/tubes/T3/result", js, `{"result":"invalid","tested_at":"2025-06-15 09:30"}`, &tube); status != 200 || tube.Result == nil || *tube.Result != Invalid {
		t.Fatalf("single result: %d %s", status, body)
	}
	for _, tt := range []struct {
		user, path, body string
		want             int
	}{
		{"lab", "/api/v1/tubes/T3/result", `{"result":"negative","tested_at":"2025-06-15 09:30"}`, 409},
		{"lab2", "/api/v1/tubes/T3/result", `{"result":"invalid","tested_at":"2025-06-15 09:30"}`, 404},
		{"lab", "/api/v1/tubes/T3/result", `{"result":"invalid"}`, 422},
		{"sampler", "/api/v1/tubes/T3/result", `{"result":"invalid","tested_at":"2025-06-15 09:30"}`, 403},
	} {
		if status, body, _ := send(t, srv, tt.user, "POST", tt.path, js, tt.body, nil); status != tt.want {
			t.Errorf("%s POST %s %s: %d, want %d: %s", tt.user, tt.path, tt.body, status, tt.want, body)
		}
	}

	// The tube with its members, masked; only where it may be seen.
	var detail TubeDetailJSON
	if status, body, _ := send(t, srv, "lab", "GET", "/api/v1/tubes/T1", "", "", &detail); status != 200 || len(detail.Members) != 10 ||
		detail.Members[0].Recall == nil || detail.Members[0].Recall.Reason != Positive || !detail.Members[0].Person.Masked ||
		detail.Lab == nil || detail.Lab.ID != f.labID || *detail.CtORF1ab != 28.5 || detail.CtN != nil || strings.Contains(body, "13912345678") {
		t.Fatalf("tube: %d %s", status, body)
	}
	for _, user := range []string{"lab2", "samplerB", "staffB"} {
		if status, _, _ := send(t, srv, user, "GET", "/api/v1/tubes/T1", "", "", nil); status != 404 {
			t.Errorf("%s reads T1: %d", user, status)
		}
	}

	// Recalls by residence; notify one; report the positive tube.
	var recalls recallListJSON
	var all []RecallJSON
	for cursor := ""; ; {
		path := fmt.Sprintf("/api/v1/recalls?campaign_id=%d&limit=5&cursor=%s", c, cursor)
		if status, body, _ := send(t, srv, "staffA", "GET", path, "", "", &recalls); status != 200 || len(recalls.Items) > 5 {
			t.Fatalf("staff A's recalls: %d %s", status, body)
		}
		all = append(all, recalls.Items...)
		if cursor = recalls.NextCursor; cursor == "" {
			break
		}
	}
	if len(all) != 12 || all[0].RegionCode != villageA || all[0].TubeCode != "T1" || all[11].TubeCode != "T3" || all[11].Reason != Invalid {
		t.Fatalf("staff A's recalls: %+v", all)
	}
	if status, _, _ := send(t, srv, "staffB", "GET", fmt.Sprintf("/api/v1/recalls?campaign_id=%d", c), "", "", &recalls); status != 200 || len(recalls.Items) != 0 {
		t.Fatalf("staff B's recalls: %d, %d", status, len(recalls.Items))
	}
	for _, q := range []string{"?campaign_id=x", "?state=lost", "?limit=0", "?cursor=nonsense"} {
		if status, _, _ := send(t, srv, "staffA", "GET", "/api/v1/recalls"+q, "", "", nil); status != 422 {
			t.Errorf("GET /api/v1/recalls%s: %d, want 422", q, status)
		}
	}
	var rc RecallJSON
	id := all[0].ID
	if status, body, _ := send(t, srv, "staffA", "POST", fmt.Sprintf("/api/v1/recalls/%d/notify", id), "", "", &rc); status != 200 || rc.State != RecallNotified || rc.NotifiedAt == nil {
		t.Fatalf("notify: %d %s", status, body)
	}
	if status, _, _ := send(t, srv, "staffB", "POST", fmt.Sprintf("/api/v1/recalls/%d/notify", id), "", "", nil); status != 404 {
		t.Errorf("staff B notifies A's recall: %d", status)
	}
	if status, body, _ := send(t, srv, "cdc", "POST", "/api/v1/tubes/T1/report", "", "", &tube); status != 200 || tube.ReportedAt == nil {
		t.Fatalf("report: %d %s", status, body)
	}
	if status, _, _ := send(t, srv, "cdc", "POST", "/api/v1/tubes/T2/report", "", "", nil); status != 409 {
		t.Errorf("report a negative tube: %d", status)
	}
	status, body, hdr = send(t, srv, "staffA", "GET", fmt.Sprintf("/api/v1/recalls/export?format=xlsx&campaign_id=%d", c), "", "", nil)
	if status != 200 || hdr.Get("Content-Type") != tabular.XLSX.ContentType() || !strings.HasPrefix(body, "PK") {
		t.Errorf("xlsx export: %d %s", status, hdr.Get("Content-Type"))
	}
}

func TestResultsPages(t *testing.T) {
	f, srv := resultsServer(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	seedTube(f, c, ptA, "T1", 10, repeat(villageA, 10)...)
	seedTube(f, c, ptA, "T2", 10, repeat(villageB, 10)...)
	seedTube(f, c, ptA, "T3", 10, villageA)

	page(t, srv, "sampler", "/screening/tubes", 200, `name="code"`)
	if status, _, hdr := webtest.Do(t, srv, "sampler", "GET", "/screening/tubes?code=+t3+", "", nil); status != 303 || hdr.Get("Location") != "/screening/tubes/T3" {
		t.Fatalf("find: %d %s", status, hdr.Get("Location"))
	}
	page(t, srv, "sampler", "/screening/tubes/T3", 200, "T3", `action="/screening/tubes/T3/seal"`, "王")
	page(t, srv, "samplerB", "/screening/tubes/T3", 404)
	if status, _, hdr := resultsForm(t, srv, "sampler", "/screening/tubes/T3/seal", url.Values{}); status != 303 || !strings.Contains(hdr.Get("Location"), "notice=screening.tube_sealed") {
		t.Fatalf("seal form: %d %v", status, hdr)
	}
	page(t, srv, "sampler", "/screening/tubes/T3?notice=screening.tube_sealed", 200, "已封管")

	// Handover: scan a tube in, then hand over the ticked and scanned tubes.
	page(t, srv, "sampler", "/screening/handover", 200, `value="T1"`, `value="T2"`, "洞头区检测实验室")
	form := url.Values{"code": {"BOX9"}, "lab_id": {strconv.FormatInt(f.labID, 10)}, "tube_codes": {"T1"}, "add": {"t2"}}
	status, body, _ := resultsForm(t, srv, "sampler", "/screening/handover", form)
	if status != 200 || !strings.Contains(body, "T2</textarea>") || !strings.Contains(body, "已加入 T2") {
		t.Fatalf("scan in: %d %.2000s", status, body)
	}
	form.Set("scanned", "T2\nT3\nNOPE")
	form.Set("add", "")
	form.Set("action", "handover")
	status, body, _ = resultsForm(t, srv, "sampler", "/screening/handover", form)
	if status != 422 || !strings.Contains(body, "NOPE") || !strings.Contains(body, "没有这个采样管") {
		t.Fatalf("hand over an unknown tube: %d %.3000s", status, body)
	}
	form.Set("scanned", "T2\nT3")
	status, _, hdr := resultsForm(t, srv, "sampler", "/screening/handover", form)
	if status != 303 || hdr.Get("Location") != "/screening/batches/BOX9?notice=screening.batch_created" {
		t.Fatalf("hand over: %d %v", status, hdr)
	}
	page(t, srv, "sampler", "/screening/batches/BOX9", 200, "转运单 BOX9", "3 管，21 人份", "T3")
	page(t, srv, "lab", "/screening/batches/BOX9", 200, `action="/screening/batches/BOX9/receive"`)

	// The lab receives the box by its code, enters a result, imports a file.
	page(t, srv, "lab", "/screening/lab?state=in_transit", 200, "T1", `action="/screening/lab/receive"`)
	if status, body, _ := resultsForm(t, srv, "lab2", "/screening/lab/receive", url.Values{"batch_code": {"BOX9"}}); status != 422 || !strings.Contains(body, "没有发往本实验室的这个转运箱") {
		t.Fatalf("lab2 receives: %d %.1000s", status, body)
	}
	if status, _, hdr := resultsForm(t, srv, "lab", "/screening/lab/receive", url.Values{"batch_code": {"box9"}}); status != 303 || !strings.HasPrefix(hdr.Get("Location"), "/screening/batches/BOX9") {
		t.Fatalf("receive: %d %v", status, hdr)
	}
	result := url.Values{"tube_code": {"T1"}, "result": {"positive"}, "ct_orf1ab": {"29"}, "ct_n": {""}, "tested_at": {"2025-06-15T09:10"}}
	status, _, hdr = resultsForm(t, srv, "lab", "/screening/lab/results", result)
	if status != 303 || !strings.Contains(hdr.Get("Location"), "tube=T1") {
		t.Fatalf("enter a result: %d %v", status, hdr)
	}
	page(t, srv, "lab", hdr.Get("Location"), 200, "结果已保存", "/screening/tubes/T1")
	result.Set("result", "negative")
	if status, body, _ := resultsForm(t, srv, "lab", "/screening/lab/results", result); status != 422 || !strings.Contains(body, "该采样管已有不同的检测结果") {
		t.Fatalf("conflicting result: %d %.1000s", status, body)
	}
	result.Set("tube_code", "T2")
	result.Set("ct_n", "abc")
	if status, body, _ := resultsForm(t, srv, "lab", "/screening/lab/results", result); status != 422 || !strings.Contains(body, "Ct 值应为 0 到 50 之间的数字") {
		t.Fatalf("bad Ct: %d %.1000s", status, body)
	}
	status, body = resultsUpload(t, srv, "lab", "/screening/lab/import", "results.csv",
		"tube_code,result,ct_orf1ab,ct_n,tested_at\nT2,阴性,,,2025-06-15 09:00\nT3,positive,,,2025-06-15 23:00\n")
	if status != 200 || !strings.Contains(body, "已接受 1 条") || !strings.Contains(body, "检测时间晚于当前时间") {
		t.Fatalf("import page: %d %.3000s", status, body)
	}
	if m := untranslated.FindString(body); m != "" {
		t.Errorf("import page shows the key %q", m)
	}
	page(t, srv, "lab", "/screening/lab?state=resulted", 200, "T1", "T2")
	page(t, srv, "lab", "/screening/tubes/T1", 200, "阳性", "ORF1ab Ct 29", "待通知")
	page(t, srv, "sampler", "/screening/lab", 403)

	// The township's calling list, printable and exportable; notify one.
	body = page(t, srv, "staffA", fmt.Sprintf("/screening/recalls?campaign_id=%d", c), 200, "城中社区", "139****5678", "T1", "打印召回名单")
	if strings.Contains(body, "镇中居委会") {
		t.Errorf("township A's list shows township B's residents")
	}
	var recall int64
	if err := f.db.QueryRow("SELECT MIN(id) FROM recalls").Scan(&recall); err != nil {
		t.Fatal(err)
	}
	back := fmt.Sprintf("/screening/recalls?campaign_id=%d", c)
	status, _, hdr = resultsForm(t, srv, "staffA", fmt.Sprintf("/screening/recalls/%d/notify", recall), url.Values{"back": {back}})
	if status != 303 || hdr.Get("Location") != back+"&notice=screening.recall_notified" {
		t.Fatalf("notify: %d %v", status, hdr)
	}
	status, _, hdr = resultsForm(t, srv, "staffA", fmt.Sprintf("/screening/recalls/%d/notify", recall), url.Values{"back": {"https://evil.example/"}})
	if status != 303 || hdr.Get("Location") != "/screening/recalls?notice=screening.recall_notified" {
		t.Fatalf("notify with a foreign return address: %d %v", status, hdr)
	}
	page(t, srv, "staffA", hdr.Get("Location"), 200, "已记录通知")
	page(t, srv, "staffA", "/screening/recalls?state=lost", 422, "未知的召回状态")
	status, body, hdr = webtest.Do(t, srv, "staffA", "GET", fmt.Sprintf("/screening/recalls/export?format=csv&campaign_id=%d", c), "", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || strings.Count(body, "\n") != 11 || !strings.Contains(body, "居住地") {
		t.Errorf("csv export: %d %s %q", status, hdr.Get("Content-Type"), body)
	}
	page(t, srv, "lab", "/screening/recalls", 403)

	// The CDC's list of positives, reported from the list.
	page(t, srv, "cdc", "/screening/positives?reported=no", 200, "T1", "混管阳性", `action="/screening/tubes/T1/report"`)
	status, _, hdr = resultsForm(t, srv, "cdc", "/screening/tubes/T1/report", url.Values{"back": {"/screening/positives?reported=no"}})
	if status != 303 || hdr.Get("Location") != "/screening/positives?reported=no&notice=screening.tube_reported" {
		t.Fatalf("report from the list: %d %v", status, hdr)
	}
	page(t, srv, "cdc", hdr.Get("Location"), 200, "阳性报告时限已完成")
	page(t, srv, "cdc", "/screening/positives?reported=yes", 200, "T1", "已上报")
	page(t, srv, "cdc", "/screening/positives?reported=maybe", 422)
	page(t, srv, "lab", "/screening/positives", 403)
}

// resultsForm posts a form as user without following redirects.
func resultsForm(t *testing.T, srv *httptest.Server, user, path string, v url.Values) (int, string, http.Header) {
	t.Helper()
	return webtest.Do(t, srv, user, "POST", path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

// resultsUpload posts a file as the form field "file".
func resultsUpload(t *testing.T, srv *httptest.Server, user, path, name, content string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(fw, content); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	status, body, _ := webtest.Do(t, srv, user, "POST", path, mw.FormDataContentType(), &buf)
	return status, body
}

// TestResultsOpenAPI: the module's OpenAPI document (with the part files
// not merged into it yet) builds, every API route of resultRoutes is in it
// and every operation on those paths is routed.
func TestResultsOpenAPI(t *testing.T) {
	frags := []openapi.Fragment{people.OpenAPI, OpenAPI}
	parts, err := filepath.Glob("openapi_*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range parts {
		frags = append(frags, openapi.Fragment{FS: os.DirFS("."), Name: name})
	}
	doc, err := openapi.Build(frags...)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range doc.Operations() {
		documented[op.Method+" "+op.Path] = true
	}
	routed := map[string]bool{}
	resultRoutes(routeRecorder(routed), nil, &Handlers{})
	for r := range routed {
		if strings.Contains(r, " /api/v1/") && !documented[r] {
			t.Errorf("route %s is not documented", r)
		}
	}
	for r := range documented {
		for _, mine := range []string{" /api/v1/tubes", " /api/v1/batches", " /api/v1/lab-results", " /api/v1/recalls"} {
			if strings.Contains(r, mine) && !routed[r] {
				t.Errorf("operation %s is not routed", r)
			}
		}
	}
}

// routeRecorder records the patterns routed on it.
type routeRecorder map[string]bool

func (rr routeRecorder) Handle(pattern string, _ http.Handler) { rr[pattern] = true }
