package screening

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/tabular"
)

// positiveTubes seeds two full pooled tubes at point A and one at point B,
// members living in both townships, hands them to the lab and records them
// positive, suspicious and positive.
func positiveTubes(f *fixture) (c int64, tubes []seeded) {
	f.t.Helper()
	c = f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ptB := f.point(c, f.pointInstB, "灵昆采样点", townshipB)
	mixed := append(repeat(villageA, 7), repeat(villageB, 3)...)
	tubes = []seeded{
		seedTube(f, c, ptA, "TA1", 10, mixed...),
		seedTube(f, c, ptA, "TA2", 10, mixed...),
		seedTube(f, c, ptB, "TB1", 10, repeat(villageB, 10)...),
	}
	handTo(f, f.labID, "TA1", "TA2", "TB1")
	tested := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	rep, err := f.svc.RecordResults(f.lab(), []ResultInput{
		{TubeCode: "TA1", Result: Positive, TestedAt: tested},
		{TubeCode: "TA2", Result: Suspicious, TestedAt: tested},
		{TubeCode: "TB1", Result: Positive, TestedAt: tested},
	})
	if err != nil || rep.Recalls != 30 {
		f.t.Fatalf("record: %+v, %v", rep, err)
	}
	return c, tubes
}

// allRecalls pages through the recalls q selects as ctx.
func allRecalls(t *testing.T, f *fixture, ctx context.Context, q RecallQuery) []Recall {
	t.Helper()
	var out []Recall
	for {
		page, next, err := f.svc.Recalls(ctx, q)
		if err != nil {
			t.Fatalf("recalls %+v: %v", q, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		q.Cursor = next
	}
}

func TestRecallScope(t *testing.T) {
	f := newFixture(t)
	c, _ := positiveTubes(f)
	tests := []struct {
		name   string
		ctx    context.Context
		q      RecallQuery
		want   int
		region string // every recall's residence lies here
	}{
		{"bureau admin, all", f.bureauAdmin(), RecallQuery{CampaignID: c}, 30, district},
		{"township A staff", f.townshipStaffA(), RecallQuery{CampaignID: c}, 14, townshipA},
		{"township B staff", f.townshipStaffB(), RecallQuery{CampaignID: c}, 16, townshipB},
		{"township B staff, reason", f.townshipStaffB(), RecallQuery{CampaignID: c, Reason: Suspicious}, 3, townshipB},
		{"bureau admin, region", f.bureauAdmin(), RecallQuery{RegionCode: villageA}, 14, villageA},
		{"epidemiologist, state", f.epidemiologist(), RecallQuery{State: RecallToNotify, Limit: 7}, 30, district},
		{"outsider", f.outsider(), RecallQuery{CampaignID: c}, 0, ""},
		{"bureau admin, other state", f.bureauAdmin(), RecallQuery{State: RecallNotified}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := allRecalls(t, f, tt.ctx, tt.q)
			if len(got) != tt.want {
				t.Fatalf("%d recalls, want %d", len(got), tt.want)
			}
			seen := map[int64]bool{}
			for i, r := range got {
				if !strings.HasPrefix(r.RegionCode, tt.region) || seen[r.ID] {
					t.Errorf("recall %d: region %s, repeated %v", r.ID, r.RegionCode, seen[r.ID])
				}
				seen[r.ID] = true
				if i > 0 && (got[i-1].RegionCode > r.RegionCode || (got[i-1].RegionCode == r.RegionCode && got[i-1].ID > r.ID)) {
					t.Errorf("recall %d out of order", r.ID)
				}
				if !r.Person.Masked || !strings.Contains(r.Person.IDNumber, "*") || r.Phone != "139****5678" || r.TubeCode == "" || r.DueAt.IsZero() {
					t.Errorf("recall = %+v", r)
				}
			}
		})
	}
	// Lists need a following role, and their filters must be known.
	if _, _, err := f.svc.Recalls(f.lab(), RecallQuery{}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("lab lists recalls: %v", err)
	}
	for _, q := range []RecallQuery{{State: "lost"}, {Reason: Negative}, {RegionCode: "33x"}, {Limit: 5000}, {Cursor: "nonsense"}} {
		if _, _, err := f.svc.Recalls(f.bureauAdmin(), q); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("recalls %+v: %v, want invalid", q, err)
		}
	}
	var searches int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'recall.search'").Scan(&searches); err != nil || searches < len(tests) {
		t.Errorf("%d recall searches audited (%v)", searches, err)
	}
}

func TestNotifyRecall(t *testing.T) {
	f := newFixture(t)
	c, _ := positiveTubes(f)
	list := allRecalls(t, f, f.townshipStaffA(), RecallQuery{CampaignID: c})
	r := list[0]
	if _, err := f.svc.NotifyRecall(f.townshipStaffB(), r.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("township B notifies A's resident: %v", err)
	}
	if _, err := f.svc.NotifyRecall(f.samplerA(), r.ID); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("sampler notifies: %v", err)
	}
	f.clock.Advance(time.Minute)
	got, err := f.svc.NotifyRecall(f.townshipStaffA(), r.ID)
	if err != nil || got.State != RecallNotified || !got.NotifiedAt.Equal(f.clock.Now()) {
		t.Fatalf("notify: %+v, %v", got, err)
	}
	f.clock.Advance(time.Minute)
	again, err := f.svc.NotifyRecall(f.townshipStaffA(), r.ID)
	if err != nil || !again.NotifiedAt.Equal(got.NotifiedAt) {
		t.Fatalf("notifying again: %+v, %v", again, err)
	}
	if _, err := f.db.Exec("UPDATE recalls SET state = 'resampled' WHERE id = $1", list[1].ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.NotifyRecall(f.townshipStaffA(), list[1].ID)
	wantErr(t, err, apperr.Conflict, "id", CodeRecallDone)
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'recall.notify'").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d notify entries (%v), want 1", n, err)
	}
}

func TestExportRecalls(t *testing.T) {
	f := newFixture(t)
	c, _ := positiveTubes(f)
	cols, row := RecallTable(func(key string) string { return key })
	var buf bytes.Buffer
	w, err := tabular.NewWriter(&buf, tabular.CSV, "recalls", cols, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = f.svc.ExportRecalls(f.townshipStaffB(), RecallQuery{CampaignID: c}, "csv", func(r Recall) error { return w.Write(row(r)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 17 {
		t.Fatalf("%d lines, want a header and 16 recalls:\n%s", len(lines), buf.String())
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "330305002001") || !strings.Contains(l, "139****5678") || strings.Contains(l, "13912345678") ||
			!strings.Contains(l, "screening.recall_reason.") || !strings.Contains(l, "2025-06-15 22:00:00") {
			t.Errorf("line %q", l)
		}
	}
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'recall.export' AND detail LIKE 'format=csv%'").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d export entries (%v), want 1", n, err)
	}
}

// TestRecallThroughResample follows recalled persons through the
// registration path: sampled again (resampled), and that specimen's tube
// resulted (resulted); an invalid tube's members are counted again by
// their next specimen.
func TestRecallThroughResample(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(1)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	pos := seedTube(f, c, pt, "TP", 3, villageA, villageA, villageB)
	inv := seedTube(f, c, pt, "TI", 2, villageA, villageB)
	handTo(f, f.labID, "TP", "TI")
	tested := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	if rep, err := f.svc.RecordResults(f.lab(), []ResultInput{{TubeCode: "TP", Result: Positive, TestedAt: tested},
		{TubeCode: "TI", Result: Invalid, TestedAt: tested}}); err != nil || rep.Recalls != 5 {
		t.Fatalf("record: %+v, %v", rep, err)
	}
	_, resultedA0, _ := counters(f, c, villageA)

	// Each recalled person is sampled again into a single tube of their own.
	homes := []string{villageA, villageA, villageB, villageA, villageB}
	seqs := append(slices.Clone(pos.seqs), inv.seqs...)
	f.clock.Advance(time.Hour)
	var codes []string
	for i, seq := range seqs {
		code := fmt.Sprintf("R%d", i)
		codes = append(codes, code)
		sp := specimen(c, pt, code, seq, homes[i])
		sp.SampledAt = f.clock.Now().Format(time.RFC3339)
		if reg, err := f.svc.RegisterSpecimen(f.samplerA(), sp); err != nil || reg.TubeState != string(TubeSealed) {
			t.Fatalf("resample %d: %+v, %v", seq, reg, err)
		}
	}
	states := func() map[RecallState]int {
		out := map[RecallState]int{}
		for _, r := range allRecalls(t, f, f.bureauAdmin(), RecallQuery{CampaignID: c}) {
			out[r.State]++
			if r.State != RecallToNotify && r.ResampledAt.IsZero() {
				t.Errorf("recall %d %s without resampled_at", r.ID, r.State)
			}
		}
		return out
	}
	if got := states(); got[RecallResampled] != 5 {
		t.Fatalf("after resampling: %v", got)
	}
	for _, code := range codes {
		handTo(f, f.labID, code)
	}
	f.clock.Advance(time.Hour)
	in := make([]ResultInput, len(codes))
	for i, code := range codes {
		in[i] = ResultInput{TubeCode: code, Result: Negative, TestedAt: f.clock.Now().Format(time.RFC3339)}
	}
	if rep, err := f.svc.RecordResults(f.lab(), in); err != nil || rep.Accepted != 5 || rep.Recalls != 0 {
		t.Fatalf("record resamples: %+v, %v", rep, err)
	}
	if got := states(); got[RecallResulted] != 5 {
		t.Fatalf("after the resamples' results: %v", got)
	}
	f.checkCountedRegions() // the invalid tube's list emptied, the resamples' filled
	// The invalid tube's villageA member counts as resulted through the
	// specimen that took their place; the positive tube's did already.
	if _, resultedA, _ := counters(f, c, villageA); resultedA != resultedA0+1 {
		t.Errorf("village A resulted %d, want %d", resultedA, resultedA0+1)
	}
	// All recalls of both tubes are done: their recall deadlines are met.
	var open int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM deadlines WHERE kind = 'recall' AND state <> 'met'").Scan(&open); err != nil || open != 0 {
		t.Errorf("%d recall deadlines still open (%v)", open, err)
	}
}
