package screening

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// seeded is a tube seedTube inserted.
type seeded struct {
	id        int64
	code      string
	specimens []int64
	persons   []int64
	seqs      []int // residentID(seq) of each member
}

// seedTube inserts a tube of the given capacity at a point, with one
// specimen per member (a new person living in that region), counted in
// coverage like a first registration: campaign_persons, coverage.sampled and
// the tube's counted_regions.
// Members are sampled from three hours before the clock, a minute apart; a
// full tube is sealed, others stay open.
func seedTube(f *fixture, campaignID, pointID int64, code string, capacity int, members ...string) seeded {
	f.t.Helper()
	var inst int64
	var region string
	if err := f.db.QueryRow("SELECT institution_id, region_code FROM sampling_points WHERE id = $1", pointID).Scan(&inst, &region); err != nil {
		f.t.Fatalf("seed %s: read point: %v", code, err)
	}
	first := f.clock.Now().Add(-3 * time.Hour)
	state, sealed := TubeOpen, any(nil)
	if len(members) == capacity {
		state, sealed = TubeSealed, storage.Millis(first.Add(time.Hour))
	}
	out := seeded{code: code}
	counted := ""
	for _, home := range members {
		counted += home + " "
	}
	err := f.db.QueryRow(`INSERT INTO tubes (code, campaign_id, sampling_point_id, institution_id, region_code, capacity, members, state,
		opened_at, first_sampled_at, sealed_at, counted_regions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id`,
		code, campaignID, pointID, inst, region, capacity, len(members), string(state), storage.Millis(first), sealed, counted).Scan(&out.id)
	if err != nil {
		f.t.Fatalf("seed %s: insert tube: %v", code, err)
	}
	base := f.count("persons")
	for i, home := range members {
		seq := base + i + 1
		at := storage.Millis(first.Add(time.Duration(i) * time.Minute))
		var personID, specimenID int64
		err := f.db.QueryRow(`INSERT INTO persons (id_type, id_number, name, sex, birth_date, phone, region_code, institution_id, created_at, updated_at)
			VALUES ('resident_id', $1, $2, 'male', '1950-01-01', '13912345678', $3, $4, $5, $5) RETURNING id`,
			residentID(seq), fmt.Sprintf("王%d明", seq), home, inst, at).Scan(&personID)
		if err != nil {
			f.t.Fatalf("seed %s: insert person: %v", code, err)
		}
		err = f.db.QueryRow(`INSERT INTO specimens (client_id, body_hash, campaign_id, sampling_point_id, tube_id, person_id, region_code,
			institution_id, phone, counted, sampled_at, created_at) VALUES ($1, 'seed', $2, $3, $4, $5, $6, $7, '13912345678', TRUE, $8, $8)
			RETURNING id`, fmt.Sprintf("seed-%s-%d", code, i), campaignID, pointID, out.id, personID, home, inst, at).Scan(&specimenID)
		if err != nil {
			f.t.Fatalf("seed %s: insert specimen: %v", code, err)
		}
		if _, err := f.db.Exec(`INSERT INTO campaign_persons (campaign_id, person_id, region_code, counted_specimen_id, first_sampled_at)
			VALUES ($1, $2, $3, $4, $5)`, campaignID, personID, home, specimenID, at); err != nil {
			f.t.Fatalf("seed %s: insert campaign person: %v", code, err)
		}
		if _, err := f.db.Exec(`INSERT INTO coverage (campaign_id, region_code, sampled) VALUES ($1, $2, 1)
			ON CONFLICT (campaign_id, region_code) DO UPDATE SET sampled = coverage.sampled + 1`, campaignID, home); err != nil {
			f.t.Fatalf("seed %s: count coverage: %v", code, err)
		}
		out.persons = append(out.persons, personID)
		out.specimens = append(out.specimens, specimenID)
		out.seqs = append(out.seqs, seq)
	}
	return out
}

// handTo puts tubes straight into a lab's hands (received), as a batch
// would.
func handTo(f *fixture, labID int64, codes ...string) {
	f.t.Helper()
	for _, c := range codes {
		if _, err := f.db.Exec("UPDATE tubes SET state = 'received', lab_id = $1, received_at = $2 WHERE code = $3",
			labID, storage.Millis(f.clock.Now()), c); err != nil {
			f.t.Fatalf("hand %s to lab: %v", c, err)
		}
	}
}

// repeat returns n copies of region.
func repeat(region string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = region
	}
	return out
}

// tubeState reads a tube's state.
func tubeState(f *fixture, code string) TubeState {
	f.t.Helper()
	var st string
	if err := f.db.QueryRow("SELECT state FROM tubes WHERE code = $1", code).Scan(&st); err != nil {
		f.t.Fatalf("read tube %s: %v", code, err)
	}
	return TubeState(st)
}

func TestTubeScope(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ptB := f.point(c, f.pointInstB, "灵昆采样点", townshipB)
	seedTube(f, c, ptA, "TA0001", 10, repeat(villageA, 10)...)
	seedTube(f, c, ptB, "TB0001", 10, repeat(villageB, 10)...)
	handTo(f, f.labID, "TA0001")

	tests := []struct {
		name string
		ctx  context.Context
		code string
		want apperr.Code // "" for found
	}{
		{"sampler A, own point", f.samplerA(), "TA0001", ""},
		{"sampler A, point B", f.samplerA(), "TB0001", apperr.NotFound},
		{"sampler B, point A", f.samplerB(), "TA0001", apperr.NotFound},
		{"lab, handed to it", f.lab(), "TA0001", ""},
		{"lab, not handed to it", f.lab(), "TB0001", apperr.NotFound},
		{"lab2, another lab's tube", f.lab2(), "TA0001", apperr.NotFound},
		{"township A staff", f.townshipStaffA(), "TA0001", ""},
		{"township A staff, township B", f.townshipStaffA(), "TB0001", apperr.NotFound},
		{"bureau admin", f.bureauAdmin(), "TB0001", ""},
		{"outsider admin", f.outsider(), "TA0001", apperr.NotFound},
		{"lower-case code", f.samplerA(), " ta0001 ", ""},
		{"unknown code", f.bureauAdmin(), "NOPE", apperr.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tube, err := f.svc.Tube(tt.ctx, tt.code)
			if tt.want != "" {
				if apperr.CodeOf(err) != tt.want {
					t.Fatalf("Tube(%s) = %v, %v; want %s", tt.code, tube.Code, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Tube(%s): %v", tt.code, err)
			}
			if len(tube.Members) != 10 || tube.MemberCount != 10 || tube.Capacity != 10 {
				t.Fatalf("tube %s: %d members listed, count %d", tube.Code, len(tube.Members), tube.MemberCount)
			}
			m := tube.Members[0]
			if !m.Person.Masked || m.Person.IDNumber == residentID(1) || m.Person.Name == "王1明" || m.Person.Phone == "13912345678" {
				t.Errorf("member not masked: %+v", m.Person)
			}
			if !strings.HasPrefix(m.Person.Name, "王*") || m.SpecimenID == 0 || m.SampledAt.IsZero() {
				t.Errorf("member = %+v", m)
			}
		})
	}
	// Every read is in the audit log, misses too.
	var reads, misses int
	if err := f.db.QueryRow("SELECT COUNT(*), SUM(CASE WHEN outcome = 'not_found' THEN 1 ELSE 0 END) FROM audit_log WHERE action = 'tube.read'").
		Scan(&reads, &misses); err != nil {
		t.Fatal(err)
	}
	if reads != len(tests) || misses != 7 {
		t.Errorf("%d tube reads audited (%d misses), want %d (7)", reads, misses, len(tests))
	}
	// Only screening roles look tubes up.
	if _, err := f.svc.Tube(as(&scope.Principal{UserID: 10, Username: "inspector", Roles: []scope.Role{scope.Inspector}, RegionCode: district}), "TA0001"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("inspector: %v, want forbidden", err)
	}
}

func TestSealTube(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	seedTube(f, c, ptA, "T1", 10, villageA, villageA, villageA)
	seedTube(f, c, ptA, "T2", 10, repeat(villageA, 10)...)
	handTo(f, f.labID, "T2")

	if _, err := f.svc.SealTube(f.samplerB(), "T1"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("sampler B seals A's tube: %v", err)
	}
	if _, err := f.svc.SealTube(f.lab(), "T1"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("lab seals: %v", err)
	}
	tube, err := f.svc.SealTube(f.samplerA(), "t1")
	if err != nil || tube.State != TubeSealed || tube.SealedAt.IsZero() {
		t.Fatalf("seal: %+v, %v", tube, err)
	}
	if st := tubeState(f, "T1"); st != TubeSealed {
		t.Fatalf("stored state %s", st)
	}
	if _, err := f.svc.SealTube(f.samplerA(), "T1"); err != nil {
		t.Fatalf("sealing again: %v", err)
	}
	_, err = f.svc.SealTube(f.bureauAdmin(), "T2")
	wantErr(t, err, apperr.Conflict, "code", CodeTubeNotOpen)
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'tube.seal' AND object_id = 'T1'").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d seal entries (%v), want 1", n, err)
	}
}

func TestHandover(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	ptB := f.point(c, f.pointInstB, "灵昆采样点", townshipB)
	seedTube(f, c, ptA, "T1", 10, repeat(villageA, 10)...)
	seedTube(f, c, ptA, "T2", 3, villageA, villageA, villageB)
	seedTube(f, c, ptA, "T3", 10, villageA)
	seedTube(f, c, ptB, "TB", 10, repeat(villageB, 10)...)
	notLab := f.institution(regions.Hospital, "洞头区人民医院", district)
	box := NewBatch{Code: "box-1", LabID: f.labID, TubeCodes: []string{"T1", "t2"}}

	bad := []struct {
		name        string
		ctx         context.Context
		in          NewBatch
		code        apperr.Code
		field, want string
	}{
		{"open tube", f.samplerA(), NewBatch{Code: "B0", LabID: f.labID, TubeCodes: []string{"T1", "T3"}}, apperr.Invalid, "tube_codes[1]", CodeTubeNotSealed},
		{"another point's tube", f.samplerA(), NewBatch{Code: "B0", LabID: f.labID, TubeCodes: []string{"TB"}}, apperr.Invalid, "tube_codes[0]", CodeTubeUnknown},
		{"two points", f.bureauAdmin(), NewBatch{Code: "B0", LabID: f.labID, TubeCodes: []string{"T1", "TB"}}, apperr.Invalid, "tube_codes[1]", CodeTubeOtherPoint},
		{"not a lab", f.samplerA(), NewBatch{Code: "B0", LabID: notLab, TubeCodes: []string{"T1"}}, apperr.Invalid, "lab_id", CodeLabUnknown},
		{"no tubes", f.samplerA(), NewBatch{Code: "B0", LabID: f.labID}, apperr.Invalid, "tube_codes", "required"},
		{"twice the same tube", f.samplerA(), NewBatch{Code: "B0", LabID: f.labID, TubeCodes: []string{"T1", "t1"}}, apperr.Invalid, "tube_codes[1]", CodeTubeDuplicate},
		{"bad box code", f.samplerA(), NewBatch{Code: "箱 1", LabID: f.labID, TubeCodes: []string{"T1"}}, apperr.Invalid, "code", "batch_code.format"},
		{"lab role", f.lab(), box, apperr.Forbidden, "", ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.svc.CreateBatch(tt.ctx, tt.in)
			wantErr(t, err, tt.code, tt.field, tt.want)
		})
	}
	if n := f.count("batches"); n != 0 {
		t.Fatalf("%d batches after refused handovers", n)
	}
	if st := tubeState(f, "T1"); st != TubeSealed {
		t.Fatalf("T1 is %s after refused handovers", st)
	}

	b, created, err := f.svc.CreateBatch(f.samplerA(), box)
	if err != nil || !created {
		t.Fatalf("create batch: %v, created %v", err, created)
	}
	if b.Code != "BOX-1" || b.LabName != "洞头区检测实验室" || b.State != BatchInTransit || len(b.Tubes) != 2 || b.Specimens() != 13 {
		t.Fatalf("batch = %+v", b)
	}
	for _, code := range []string{"T1", "T2"} {
		var st string
		var lab, batch int64
		if err := f.db.QueryRow("SELECT state, lab_id, batch_id FROM tubes WHERE code = $1", code).Scan(&st, &lab, &batch); err != nil {
			t.Fatal(err)
		}
		if st != "in_transit" || lab != f.labID || batch != b.ID {
			t.Errorf("%s: state %s lab %d batch %d", code, st, lab, batch)
		}
	}
	// A retry returns the batch; the same code for other tubes conflicts.
	if again, created, err := f.svc.CreateBatch(f.samplerA(), NewBatch{Code: "BOX-1", LabID: f.labID, TubeCodes: []string{"T2", "T1"}}); err != nil || created || again.ID != b.ID {
		t.Fatalf("retry: %+v created %v: %v", again, created, err)
	}
	_, _, err = f.svc.CreateBatch(f.samplerA(), NewBatch{Code: "BOX-1", LabID: f.labID, TubeCodes: []string{"T1"}})
	wantErr(t, err, apperr.Conflict, "code", CodeBatchCodeTaken)

	// The lab sees the batch and its tubes; another point and lab do not.
	for _, ctx := range []context.Context{f.samplerB(), f.lab2()} {
		if _, err := f.svc.Batch(ctx, "BOX-1"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("batch seen out of scope: %v", err)
		}
	}
	if _, err := f.svc.Tube(f.lab(), "T2"); err != nil {
		t.Errorf("lab reads a tube in transit to it: %v", err)
	}
	tubes, _, err := f.svc.Tubes(f.lab(), TubeQuery{States: []TubeState{TubeInTransit}})
	if err != nil || len(tubes) != 2 {
		t.Fatalf("lab's tubes in transit: %d, %v", len(tubes), err)
	}
	// The lab page's filter by lab narrows, never widens: its own lab
	// keeps both, another lab's id gives nothing, and lab2 naming lab 1
	// still sees only its own scope.
	for _, c := range []struct {
		name string
		ctx  context.Context
		lab  int64
		want int
	}{{"own lab", f.lab(), f.labID, 2}, {"another lab", f.lab(), f.lab2ID, 0}, {"lab2 naming lab 1", f.lab2(), f.labID, 0},
		{"the bureau naming lab 1", f.bureauAdmin(), f.labID, 2}} {
		tubes, _, err := f.svc.Tubes(c.ctx, TubeQuery{States: []TubeState{TubeInTransit}, LabID: c.lab})
		if err != nil || len(tubes) != c.want {
			t.Errorf("%s: %d tubes, %v; want %d", c.name, len(tubes), err, c.want)
		}
	}

	// Only the lab it was handed to receives it.
	if _, err := f.svc.ReceiveBatch(f.lab2(), "BOX-1"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("lab2 receives: %v", err)
	}
	if _, err := f.svc.ReceiveBatch(f.samplerA(), "BOX-1"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("sampler receives: %v", err)
	}
	f.clock.Advance(time.Hour)
	b, err = f.svc.ReceiveBatch(f.lab(), "box-1")
	if err != nil || b.State != BatchReceived || !b.ReceivedAt.Equal(f.clock.Now()) {
		t.Fatalf("receive: %+v, %v", b, err)
	}
	for _, bt := range b.Tubes {
		if bt.State != TubeReceived {
			t.Errorf("tube %s is %s after receipt", bt.Code, bt.State)
		}
	}
	if _, err := f.svc.ReceiveBatch(f.lab(), "BOX-1"); err != nil {
		t.Fatalf("receiving again: %v", err)
	}
	var entries int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action IN ('batch.create', 'tube.handover', 'batch.receive')").Scan(&entries); err != nil || entries != 4 {
		t.Errorf("%d handover entries (%v), want 4", entries, err)
	}
	labs, err := f.svc.Labs(f.samplerA())
	if err != nil || len(labs) != 2 {
		t.Errorf("labs offered to sampler A: %+v, %v", labs, err)
	}
}

func TestReportTube(t *testing.T) {
	f := newFixture(t)
	c := f.campaign(10)
	ptA := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	seedTube(f, c, ptA, "TP", 10, repeat(villageA, 10)...)
	seedTube(f, c, ptA, "TN", 10, repeat(villageA, 10)...)
	handTo(f, f.labID, "TP", "TN")
	tested := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	rep, err := f.svc.RecordResults(f.lab(), []ResultInput{
		{TubeCode: "TP", Result: Positive, TestedAt: tested}, {TubeCode: "TN", Result: Negative, TestedAt: tested}})
	if err != nil || rep.Accepted != 2 {
		t.Fatalf("record: %+v, %v", rep, err)
	}
	if _, err := f.svc.ReportTube(f.lab(), "TP"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("lab reports: %v", err)
	}
	_, err = f.svc.ReportTube(f.epidemiologist(), "TN")
	wantErr(t, err, apperr.Conflict, "code", CodeTubeNotPositive)
	if _, err := f.svc.ReportTube(f.outsider(), "TP"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("outsider reports: %v", err)
	}
	list, _, err := f.svc.PositiveTubes(f.epidemiologist(), PositiveQuery{Reported: "no"})
	if err != nil || len(list) != 1 || list[0].Code != "TP" || list[0].Deadline.State != "open" {
		t.Fatalf("unreported positives: %+v, %v", list, err)
	}
	f.clock.Advance(30 * time.Minute)
	tube, err := f.svc.ReportTube(f.epidemiologist(), "TP")
	if err != nil || !tube.ReportedAt.Equal(f.clock.Now()) || tube.Report.State != "met" {
		t.Fatalf("report: %+v, %v", tube, err)
	}
	again, err := f.svc.ReportTube(f.bureauAdmin(), "TP")
	if err != nil || !again.ReportedAt.Equal(tube.ReportedAt) {
		t.Fatalf("reporting again: %+v, %v", again, err)
	}
	if list, _, err := f.svc.PositiveTubes(f.epidemiologist(), PositiveQuery{Reported: "no"}); err != nil || len(list) != 0 {
		t.Fatalf("unreported positives after the report: %+v, %v", list, err)
	}
	if list, _, err := f.svc.PositiveTubes(f.epidemiologist(), PositiveQuery{Reported: "yes", CampaignID: c}); err != nil || len(list) != 1 {
		t.Fatalf("reported positives: %+v, %v", list, err)
	}
}
