package screening

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
)

// rawCount counts a table's rows without filing first (fixture.count files).
func (f *fixture) rawCount(table string) int {
	f.t.Helper()
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		f.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestFilingAfterAcknowledgement: a registration is acknowledged once it is
// queued and its tube filled; retries are answered from the queue; another
// instance (or the next start, after a crash before filing) files it under
// the id it was acknowledged with, with its audit entry naming the sampler.
func TestFilingAfterAcknowledgement(t *testing.T) {
	f := newFixture(t, Options{holdFiling: true})
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	var ids []int64
	for seq := 1; seq <= 3; seq++ {
		r, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "Q0001", seq, villageA))
		if err != nil {
			t.Fatal(err)
		}
		if r.TubeCount != seq || !r.Created {
			t.Errorf("registration %d: %+v", seq, r)
		}
		ids = append(ids, r.ID)
	}
	if q, s, p := f.rawCount("specimen_queue"), f.rawCount("specimens"), f.rawCount("persons"); q != 3 || s != 0 || p != 0 {
		t.Fatalf("acknowledged: %d queued, %d specimens, %d persons; want 3, 0, 0", q, s, p)
	}
	var members int
	if err := f.db.QueryRow("SELECT members FROM tubes WHERE code = 'Q0001'").Scan(&members); err != nil || members != 3 {
		t.Fatalf("tube fill %d (%v), want 3 before filing", members, err)
	}

	again, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "Q0001", 1, villageA))
	if err != nil || again.ID != ids[0] || again.Created || again.TubeCount != 3 {
		t.Errorf("retry from the queue: %+v, %v; want the original id %d", again, err, ids[0])
	}
	other := specimen(c, pt, "Q0002", 1, villageA)
	other.ClientID = again.ClientID
	_, err = f.svc.RegisterSpecimen(ctx, other)
	wantErr(t, err, apperr.Conflict, "client_id", CodeClientIDReused)

	// Another instance over the same database: reading the tube files the
	// queue first, so its members show.
	g := f.service(Options{holdFiling: true})
	tube, err := g.Tube(ctx, "Q0001")
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, m := range tube.Members {
		got = append(got, m.SpecimenID)
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("members %v, want the acknowledged ids %v", got, ids)
	}
	if q, s, p := f.rawCount("specimen_queue"), f.rawCount("specimens"), f.rawCount("persons"); q != 0 || s != 3 || p != 3 {
		t.Errorf("filed: %d queued, %d specimens, %d persons; want 0, 3, 3", q, s, p)
	}
	var audited int
	if err := f.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'specimen.create' AND username = 'sampler_a'
		AND object_id IN ($1, $2, $3)`, strconv.FormatInt(ids[0], 10), strconv.FormatInt(ids[1], 10), strconv.FormatInt(ids[2], 10)).Scan(&audited); err != nil || audited != 3 {
		t.Errorf("%d audit entries naming the sampler (%v), want 3", audited, err)
	}
	if sampled, _, _ := counters(f, c, villageA); sampled != 3 {
		t.Errorf("coverage sampled %d, want 3", sampled)
	}
	f.checkCountedRegions()

	// Ids go on from the reserved ones.
	next, err := g.RegisterSpecimen(ctx, specimen(c, pt, "Q0001", 4, villageA))
	if err != nil || next.ID <= ids[2] {
		t.Errorf("next registration %+v, %v; want an id after %d", next, err, ids[2])
	}
}

// TestResultFilesQueuedMembers: a result reaches every member of its tube,
// filed or still queued: the results transaction files the tube's queue
// first.
func TestResultFilesQueuedMembers(t *testing.T) {
	f := newFixture(t, Options{holdFiling: true})
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	for seq := 1; seq <= 10; seq++ {
		if _, err := f.svc.RegisterSpecimen(f.samplerA(), specimen(c, pt, "Q1000", seq, villageA)); err != nil {
			t.Fatal(err)
		}
	}
	// Another tube's registration stays queued: only the result's tube is
	// filed.
	if _, err := f.svc.RegisterSpecimen(f.samplerA(), specimen(c, pt, "Q1001", 11, villageA)); err != nil {
		t.Fatal(err)
	}
	handTo(f, f.labID, "Q1000")
	tested := start.Add(2 * time.Minute).Format(time.RFC3339)
	rep, err := f.svc.RecordResults(f.lab(), []ResultInput{{TubeCode: "Q1000", Result: Positive, TestedAt: tested}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 1 || rep.Recalls != 10 {
		t.Errorf("report %+v, want 1 accepted with 10 recalls", rep)
	}
	if q, r := f.rawCount("specimen_queue"), f.rawCount("recalls"); q != 1 || r != 10 {
		t.Errorf("%d queued, %d recalls; want 1 (the other tube's), 10", q, r)
	}
	if _, resulted, positive := counters(f, c, villageA); resulted != 10 || positive != 10 {
		t.Errorf("coverage resulted %d positive %d, want 10, 10", resulted, positive)
	}
}

// TestBackgroundFiler: without any read or result asking, the filer files
// what was acknowledged, soon after each group commit.
func TestBackgroundFiler(t *testing.T) {
	f := newFixture(t)
	g := f.service(Options{})
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	for seq := 1; seq <= 25; seq++ {
		if _, err := g.RegisterSpecimen(f.samplerA(), specimen(c, pt, fmt.Sprintf("Q2%03d", seq/10), seq, villageA)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.rawCount("specimen_queue") > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q, s := f.rawCount("specimen_queue"), f.rawCount("specimens"); q != 0 || s != 25 {
		t.Errorf("%d queued, %d specimens after 10 s; want 0, 25", q, s)
	}
}
