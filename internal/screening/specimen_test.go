package screening

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
)

// specimen returns a registration of person seq into tube at point.
func specimen(campaignID, pointID int64, tube string, seq int, region string) NewSpecimen {
	return NewSpecimen{
		ClientID: fmt.Sprintf("c-%d-%s-%d", pointID, tube, seq), CampaignID: campaignID, SamplingPointID: pointID,
		TubeCode: tube, SampledAt: start.Add(time.Duration(seq) * time.Second).Format(time.RFC3339),
		Person: SpecimenPerson{IDNumber: residentID(seq), Name: "张三", Phone: "13800138000", RegionCode: region},
	}
}

// wantErr fails unless err has the code and (when given) names field with fieldCode.
func wantErr(t *testing.T, err error, code apperr.Code, field, fieldCode string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if field == "" {
		return
	}
	for _, f := range e.Fields {
		if f.Field == field && (fieldCode == "" || f.Code == fieldCode) {
			return
		}
	}
	t.Fatalf("error %v: fields %+v, want %s %s", err, e.Fields, field, fieldCode)
}

func TestRegisterFillsAndSealsTube(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	for i := 1; i <= 10; i++ {
		reg, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "T0001", i, villageA))
		if err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
		if !reg.Created || reg.TubeCount != i || reg.TubeCapacity != 10 || reg.TubeCode != "T0001" {
			t.Fatalf("register %d: %+v", i, reg)
		}
		wantState := TubeOpen
		if i == 10 {
			wantState = TubeSealed
		}
		if reg.TubeState != string(wantState) {
			t.Errorf("after %d: tube state %s, want %s", i, reg.TubeState, wantState)
		}
	}
	_, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "T0001", 11, villageA))
	wantErr(t, err, apperr.Conflict, "tube_code", CodeTubeFull)
	if n := f.count("specimens"); n != 10 {
		t.Errorf("%d specimens, want 10", n)
	}
	var members int
	var state string
	var sealedAt *int64
	if err := f.db.QueryRow("SELECT members, state, sealed_at FROM tubes WHERE code = 'T0001'").Scan(&members, &state, &sealedAt); err != nil {
		t.Fatal(err)
	}
	if members != 10 || state != "sealed" || sealedAt == nil {
		t.Errorf("tube: members %d state %s sealed_at %v", members, state, sealedAt)
	}
	// The 11th person was neither Registered nor counted.
	if n := f.count("persons"); n != 10 {
		t.Errorf("%d persons, want 10", n)
	}
}

func TestRegisterRefusesSealedTube(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	if _, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "T0002", 1, villageA)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec("UPDATE tubes SET state = 'sealed' WHERE code = 'T0002'"); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "T0002", 2, villageA))
	wantErr(t, err, apperr.Conflict, "tube_code", CodeTubeSealed)
	if n := f.count("specimens"); n != 1 {
		t.Errorf("%d specimens, want 1", n)
	}
}

func TestRegisterIdempotency(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	in := specimen(c, pt, "T0003", 1, villageA)
	first, err := f.svc.RegisterSpecimen(ctx, in)
	if err != nil || !first.Created {
		t.Fatalf("first: %+v %v", first, err)
	}
	// The same body, spelt differently (spaces, lower-case tube code), is a retry.
	retry := in
	retry.TubeCode = " t0003 "
	retry.Person.Phone = "+86 138 0013 8000"
	again, err := f.svc.RegisterSpecimen(ctx, retry)
	if err != nil || again.Created || again.ID != first.ID || again.TubeCount != 1 {
		t.Fatalf("retry: %+v %v (first %+v)", again, err, first)
	}
	other := in
	other.Person.Name = "李四"
	_, err = f.svc.RegisterSpecimen(ctx, other)
	wantErr(t, err, apperr.Conflict, "client_id", CodeClientIDReused)
	if n := f.count("specimens"); n != 1 {
		t.Errorf("%d specimens, want 1", n)
	}
	var members int
	if err := f.db.QueryRow("SELECT members FROM tubes WHERE code = 'T0003'").Scan(&members); err != nil || members != 1 {
		t.Errorf("tube members %d (%v), want 1", members, err)
	}
}

func TestRegisterValidation(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ptB := f.point(c, f.pointInstB, "灵昆采样点", townshipB)
	other := f.campaign(20)
	for _, tc := range []struct {
		name        string
		edit        func(*NewSpecimen)
		code        apperr.Code
		field, want string
	}{
		{"bad check digit", func(s *NewSpecimen) { s.Person.IDNumber = s.Person.IDNumber[:17] + "0" }, apperr.Invalid, "person.id_number", ""},
		{"bad phone", func(s *NewSpecimen) { s.Person.Phone = "12345" }, apperr.Invalid, "person.phone", ""},
		{"no phone without flag", func(s *NewSpecimen) { s.Person.Phone = "" }, apperr.Invalid, "person.phone", "required"},
		{"no name", func(s *NewSpecimen) { s.Person.Name = " " }, apperr.Invalid, "person.name", ""},
		{"unknown region", func(s *NewSpecimen) { s.Person.RegionCode = "999999" }, apperr.Invalid, "person.region_code", ""},
		{"no client id", func(s *NewSpecimen) { s.ClientID = "" }, apperr.Invalid, "client_id", "required"},
		{"client id with spaces", func(s *NewSpecimen) { s.ClientID = "a b" }, apperr.Invalid, "client_id", "client_id.format"},
		{"no tube", func(s *NewSpecimen) { s.TubeCode = "" }, apperr.Invalid, "tube_code", "required"},
		{"tube code with quote", func(s *NewSpecimen) { s.TubeCode = "T1'--" }, apperr.Invalid, "tube_code", "tube_code.format"},
		{"no time", func(s *NewSpecimen) { s.SampledAt = "" }, apperr.Invalid, "sampled_at", "required"},
		{"bad time", func(s *NewSpecimen) { s.SampledAt = "yesterday" }, apperr.Invalid, "sampled_at", "sampled_at.format"},
		{"future", func(s *NewSpecimen) { s.SampledAt = start.Add(time.Hour).Format(time.RFC3339) }, apperr.Invalid, "sampled_at", CodeSampledFuture},
		{"before the campaign", func(s *NewSpecimen) { s.SampledAt = start.Add(-3 * time.Hour).Format(time.RFC3339) }, apperr.Invalid, "sampled_at", CodeSampledOutside},
		{"unknown point", func(s *NewSpecimen) { s.SamplingPointID = 999 }, apperr.Invalid, "sampling_point_id", CodePointUnknown},
		{"another sampler's point", func(s *NewSpecimen) { s.SamplingPointID = ptB }, apperr.Invalid, "sampling_point_id", CodePointUnknown},
		{"point of another campaign", func(s *NewSpecimen) { s.CampaignID = other }, apperr.Invalid, "sampling_point_id", CodePointCampaign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := specimen(c, pt, "T0004", 1, villageA)
			tc.edit(&in)
			_, err := f.svc.RegisterSpecimen(f.samplerA(), in)
			wantErr(t, err, tc.code, tc.field, tc.want)
		})
	}
	no := specimen(c, pt, "T0004", 2, villageA)
	no.Person.Phone, no.Person.NoPhone = "", true
	if _, err := f.svc.RegisterSpecimen(f.samplerA(), no); err != nil {
		t.Errorf("elderly without phone: %v", err)
	}
	for _, table := range []string{"specimens", "tubes", "persons"} {
		if n := f.count(table); n != 1 {
			t.Errorf("%d %s, want only the elderly person's", n, table)
		}
	}
	// A lab may not register at all.
	_, err := f.svc.RegisterSpecimen(f.lab(), specimen(c, pt, "T0004", 3, villageA))
	wantErr(t, err, apperr.Forbidden, "", "")
	// A closed campaign takes no more specimens.
	if _, err := f.db.Exec("UPDATE campaigns SET closed_at = 1 WHERE id = $1", c); err != nil {
		t.Fatal(err)
	}
	f.svc.points.forget()
	_, err = f.svc.RegisterSpecimen(f.samplerA(), specimen(c, pt, "T0004", 4, villageA))
	wantErr(t, err, apperr.Conflict, "campaign_id", CodeCampaignClosed)
}

func TestRegisterTubeAtAnotherPoint(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ptB := f.point(c, f.pointInstB, "灵昆采样点", townshipB)
	if _, err := f.svc.RegisterSpecimen(f.samplerA(), specimen(c, ptA, "T0005", 1, villageA)); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.RegisterSpecimen(f.samplerB(), specimen(c, ptB, "T0005", 2, villageB))
	wantErr(t, err, apperr.Conflict, "tube_code", CodeTubeElsewhere)
}

// TestRegisterConcurrently fills 30 tubes from 300 concurrent requests: the
// group commit batches them, and every tube ends exactly full.
func TestRegisterConcurrently(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	f.clock.Advance(time.Hour) // every sampling time is in the past
	var wg sync.WaitGroup
	errs := make(chan error, 330)
	for i := 1; i <= 330; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.RegisterSpecimen(f.samplerA(), specimen(c, pt, fmt.Sprintf("T1%03d", i%30), i, villageA))
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	full := 0
	for err := range errs {
		if apperr.Is(err, apperr.Conflict) {
			full++
			continue
		}
		t.Errorf("register: %v", err)
	}
	if full != 30 {
		t.Errorf("%d refused, want 30 (one per full tube)", full)
	}
	var n, sum, sealed int
	if err := f.db.QueryRow("SELECT COUNT(*), SUM(members), SUM(CASE WHEN state = 'sealed' THEN 1 ELSE 0 END) FROM tubes").Scan(&n, &sum, &sealed); err != nil {
		t.Fatal(err)
	}
	if n != 30 || sum != 300 || sealed != 30 || f.count("specimens") != 300 {
		t.Errorf("tubes %d members %d sealed %d specimens %d", n, sum, sealed, f.count("specimens"))
	}
	var audited int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'specimen.create' AND username = 'sampler_a'").Scan(&audited); err != nil || audited != 300 {
		t.Errorf("%d specimen audit entries (%v), want 300", audited, err)
	}
	f.checkCountedRegions()
}

// TestRegisterOverlappingBatches registers tubes the way a queue of
// samplers does: the members of one tube arrive at once from different
// requests, so one tube is named by several batches written at the same
// time (PostgreSQL keeps several batch transactions open), some opening it
// and some filling it. Every registration must succeed: the batches lock
// tubes in one order, so none deadlocks another.
func TestRegisterOverlappingBatches(t *testing.T) {
	// Many small batches, several written at once, overlap the most.
	f := newFixture(t, Options{MaxBatch: 5, QueueLimit: 1000, Workers: 6})
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	f.clock.Advance(time.Hour)
	const n = 1000
	jobs := make(chan NewSpecimen)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range jobs {
				if _, err := f.svc.RegisterSpecimen(f.samplerA(), in); err != nil {
					errs <- fmt.Errorf("%s: %w", in.ClientID, err)
				}
			}
		}()
	}
	for i := range n {
		// The members of four tubes at a time arrive interleaved.
		tube := i/40*4 + i%40*7%40/10
		jobs <- specimen(c, pt, fmt.Sprintf("OV%04d", tube), i+1, villageA)
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var tubes, sealed int
	if err := f.db.QueryRow("SELECT COUNT(*), SUM(CASE WHEN state = 'sealed' AND members = 10 THEN 1 ELSE 0 END) FROM tubes").Scan(&tubes, &sealed); err != nil {
		t.Fatal(err)
	}
	if tubes != n/10 || sealed != n/10 || f.count("specimens") != n {
		t.Errorf("tubes %d (%d full and sealed), specimens %d; want %d, %d, %d", tubes, sealed, f.count("specimens"), n/10, n/10, n)
	}
	f.checkCountedRegions()
}

func TestRegisterCoverageCounts(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	must := func(in NewSpecimen) {
		t.Helper()
		if _, err := f.svc.RegisterSpecimen(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	must(specimen(c, pt, "T2001", 1, villageA))
	must(specimen(c, pt, "T2001", 2, villageA))
	must(specimen(c, pt, "T2001", 3, villageB))
	must(specimen(c, pt, "T2001", 4, otherCity)) // a visitor: sampled, not targeted
	// Person 1 sampled again (a second tube): still one person.
	again := specimen(c, pt, "T2002", 1, villageA)
	again.ClientID = "again-1"
	must(again)
	f.filed()
	got := map[string][2]int{}
	rows, err := f.db.Query("SELECT region_code, targeted, sampled FROM coverage WHERE campaign_id = $1", c)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		var tg, s int
		if err := rows.Scan(&r, &tg, &s); err != nil {
			t.Fatal(err)
		}
		got[r] = [2]int{tg, s}
	}
	want := map[string][2]int{villageA: {2, 2}, villageB: {1, 1}, otherCity: {0, 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("coverage (targeted, sampled) = %v, want %v", got, want)
	}
	var counted int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM specimens WHERE counted").Scan(&counted); err != nil || counted != 4 {
		t.Errorf("%d counted specimens (%v), want 4", counted, err)
	}
	f.checkCountedRegions()
}

func TestRegisterMarksRecallResampled(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	reg, err := f.svc.RegisterSpecimen(ctx, specimen(c, pt, "T3001", 1, villageA))
	if err != nil {
		t.Fatal(err)
	}
	// The tube came back positive: a recall for its member (written
	// directly; the result rules are tested with results).
	f.filed()
	if _, err := f.db.Exec(`INSERT INTO recalls (campaign_id, tube_id, specimen_id, person_id, region_code, institution_id, reason, state, due_at, created_at)
		SELECT campaign_id, tube_id, id, person_id, region_code, institution_id, 'positive', 'to_notify', 1, 1 FROM specimens WHERE id = $1`, reg.ID); err != nil {
		t.Fatal(err)
	}
	single := specimen(c, pt, "S3001", 1, villageA)
	single.ClientID = "resample-1"
	re, err := f.svc.RegisterSpecimen(ctx, single)
	if err != nil {
		t.Fatal(err)
	}
	var state string
	var by int64
	f.filed()
	if err := f.db.QueryRow("SELECT state, resample_specimen_id FROM recalls").Scan(&state, &by); err != nil {
		t.Fatal(err)
	}
	if state != "resampled" || by != re.ID {
		t.Errorf("recall %s by specimen %d, want resampled by %d", state, by, re.ID)
	}
}

// TestRegisterBatchDuplicates sends the same client id twice into one batch.
func TestRegisterBatchDuplicates(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	in := specimen(c, pt, "T4001", 1, villageA)
	var items []registration
	for range 2 {
		reg, err := f.svc.prepare(f.samplerA(), in)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, reg)
	}
	changed := in
	changed.Person.Name = "王五"
	reg, err := f.svc.prepare(f.samplerA(), changed)
	if err != nil {
		t.Fatal(err)
	}
	items = append(items, reg)
	var results []Registered
	var errs []error
	err = f.db.InTx(context.Background(), func(tx *sql.Tx) error {
		results, errs = f.svc.applyRegistrations(context.Background(), tx, items)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil || !results[0].Created || results[1].Created || results[1].ID != results[0].ID {
		t.Errorf("duplicate: %+v %v / %+v %v", results[0], errs[0], results[1], errs[1])
	}
	wantErr(t, errs[2], apperr.Conflict, "client_id", CodeClientIDReused)
	if n := f.count("specimens"); n != 1 {
		t.Errorf("%d specimens, want 1", n)
	}
}

// TestPointCacheRefreshesOnce checks that an expired point is read again by
// one request while the others keep the old entry, and that a closed
// campaign is seen once the entry is refreshed.
func TestPointCacheRefreshesOnce(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ctx := f.samplerA()
	first, err := f.svc.points.get(ctx, f.svc, f.svc.db, pt)
	if err != nil || first.closed {
		t.Fatalf("first read: %+v %v", first, err)
	}
	if _, err := f.db.Exec("UPDATE campaigns SET closed_at = 1 WHERE id = $1", c); err != nil {
		t.Fatal(err)
	}
	// Expire the entry and mark it as being refreshed by another request:
	// this one gets the old entry without reading.
	f.svc.points.mu.Lock()
	e := f.svc.points.points[pt]
	e.loaded = e.loaded.Add(-2 * pointTTL)
	e.refreshing = true
	f.svc.points.points[pt] = e
	f.svc.points.mu.Unlock()
	if got, err := f.svc.points.get(ctx, f.svc, f.svc.db, pt); err != nil || got.closed {
		t.Fatalf("while another request refreshes: %+v %v, want the old entry", got, err)
	}
	// The refreshing request's turn: it reads the closed campaign.
	f.svc.points.mu.Lock()
	e.refreshing = false
	f.svc.points.points[pt] = e
	f.svc.points.mu.Unlock()
	if got, err := f.svc.points.get(ctx, f.svc, f.svc.db, pt); err != nil || !got.closed {
		t.Fatalf("after the refresh: %+v %v, want the campaign closed", got, err)
	}
	if got, _ := f.svc.points.get(ctx, f.svc, f.svc.db, pt); !got.closed || got.refreshing {
		t.Errorf("cached entry %+v", got)
	}
}
