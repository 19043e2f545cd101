package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

var testNow = time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)

func newLog(t testing.TB) (*Log, *storage.DB) {
	t.Helper()
	db := storagetest.Open(t, Migrations)
	return New(db, func() time.Time { return testNow }), db
}

func userCtx(id int64, name, region string, roles ...scope.Role) context.Context {
	return scope.WithPrincipal(context.Background(), &scope.Principal{UserID: id, Username: name, RegionCode: region, Roles: roles})
}

func count(t *testing.T, db *storage.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustVerify(t *testing.T, l *Log, entries int64) {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Entries != entries {
		t.Fatalf("Verify = %+v, want intact chain of %d entries", rep, entries)
	}
}

func TestRecordStoresWhoWhatWhere(t *testing.T) {
	l, db := newLog(t)
	tests := []struct {
		name       string
		ctx        context.Context
		entry      Entry
		wantUserID sql.NullInt64
		wantUser   string
		wantRegion string
		wantOut    string
	}{
		{"user", WithClient(userCtx(7, "li", "330305", scope.Sampler), "10.0.0.9", "Firefox"),
			Entry{Action: "person.read", ObjectType: "person", ObjectID: "42"}, sql.NullInt64{Int64: 7, Valid: true}, "li", "330305", "ok"},
		{"system", scope.WithPrincipal(context.Background(), scope.System()),
			Entry{Action: "person.import", Outcome: Invalid}, sql.NullInt64{}, "system", "", "invalid"},
		{"anonymous failed login of a known user", context.Background(),
			Entry{Action: "user.login", Outcome: Denied, Detail: "bad password", RegionCode: "330305"}, sql.NullInt64{}, "anonymous", "330305", "denied"},
		{"user's own region wins over the entry's", userCtx(8, "wang", "330305001", scope.BureauAdmin),
			Entry{Action: "user.update", RegionCode: "110101"}, sql.NullInt64{Int64: 8, Valid: true}, "wang", "330305001", "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.RecordOutside(tt.ctx, tt.entry); err != nil {
				t.Fatal(err)
			}
			var r row
			if err := scanRow(db.QueryRow("SELECT "+selectColumns+" FROM audit_log ORDER BY id DESC LIMIT 1"), &r); err != nil {
				t.Fatal(err)
			}
			if r.UserID != tt.wantUserID || r.Username != tt.wantUser || r.RegionCode != tt.wantRegion || r.Outcome != tt.wantOut ||
				r.Action != tt.entry.Action || r.At != storage.Millis(testNow) {
				t.Errorf("stored %+v", r)
			}
			if c := clientOf(tt.ctx); r.ClientAddr != c.addr || r.UserAgent != c.userAgent {
				t.Errorf("client = %q %q, want %q %q", r.ClientAddr, r.UserAgent, c.addr, c.userAgent)
			}
		})
	}
	mustVerify(t, l, int64(len(tests)))
}

func TestRecordRejectsBadEntries(t *testing.T) {
	l, db := newLog(t)
	for _, e := range []Entry{{}, {Action: "person.read", Outcome: "maybe"}} {
		if err := l.RecordOutside(context.Background(), e); err == nil {
			t.Errorf("RecordOutside(%+v) succeeded", e)
		}
	}
	if n := count(t, db); n != 0 {
		t.Fatalf("%d entries stored", n)
	}
}

func TestRecordCleansFieldsSoTheHashSurvivesTheRoundTrip(t *testing.T) {
	l, _ := newLog(t)
	ctx := WithClient(context.Background(), "::1", strings.Repeat("é", 300))
	if err := l.RecordOutside(ctx, Entry{Action: "person.search", Detail: "a\x00b\xffc" + strings.Repeat("x", 2000)}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l, 1)
}

func TestRollbackLeavesNoEntry(t *testing.T) {
	l, db := newLog(t)
	ctx := userCtx(1, "li", "3303", scope.BureauAdmin)
	boom := errors.New("write failed")
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if err := l.Record(ctx, tx, Entry{Action: "person.create", ObjectType: "person", ObjectID: "1"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	if n := count(t, db); n != 0 {
		t.Fatalf("%d entries after rollback", n)
	}
	// The next entry takes the id the rolled-back one had: no gap.
	if err := l.RecordOutside(ctx, Entry{Action: "person.read"}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l, 1)
}

func TestConcurrentWritersKeepOneChain(t *testing.T) {
	l, db := newLog(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := userCtx(int64(w+1), fmt.Sprintf("u%d", w), "3303", scope.Sampler)
			for i := range each {
				err := db.InTx(ctx, func(tx *sql.Tx) error {
					return l.Record(ctx, tx, Entry{Action: "specimen.create", ObjectType: "specimen", ObjectID: fmt.Sprintf("%d-%d", w, i)})
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustVerify(t, l, writers*each)
	if n := count(t, db); n != writers*each {
		t.Fatalf("%d entries, want %d", n, writers*each)
	}
}

func TestRecordBatch(t *testing.T) {
	l, db := newLog(t)
	ctx := scope.WithPrincipal(context.Background(), scope.System())
	if err := l.RecordOutside(ctx, Entry{Action: "import.start"}); err != nil {
		t.Fatal(err)
	}
	// A bulk import's worth, in one statement: order and chain kept.
	entries := make([]Entry, 1207)
	for i := range entries {
		entries[i] = Entry{Action: "person.import", ObjectType: "person", ObjectID: fmt.Sprint(i)}
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return l.RecordBatch(ctx, tx, entries) }); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l, int64(len(entries)+1))
	var last string
	if err := db.QueryRow("SELECT object_id FROM audit_log ORDER BY id DESC LIMIT 1").Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(len(entries) - 1); last != want {
		t.Fatalf("last entry names object %s, want %s (order kept)", last, want)
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return l.RecordBatch(ctx, tx, nil) }); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

// TestRecordAttributed records entries of two users' requests in one
// transaction, as the filing of registrations does: each names its own user
// and client, taken from its request's context by OriginOf.
func TestRecordAttributed(t *testing.T) {
	l, db := newLog(t)
	a := OriginOf(WithClient(userCtx(7, "sampler_a", "330305001"), "10.0.0.7", "phone A"))
	b := OriginOf(WithClient(userCtx(8, "sampler_b", "330305002"), "10.0.0.8", "phone B"))
	items := []Attributed{
		{Origin: a, Entry: Entry{Action: "specimen.create", ObjectType: "specimen", ObjectID: "1"}},
		{Origin: b, Entry: Entry{Action: "specimen.create", ObjectType: "specimen", ObjectID: "2"}},
		{Origin: a, Entry: Entry{Action: "specimen.create", ObjectType: "specimen", ObjectID: "3"}},
	}
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return l.RecordAttributed(ctx, tx, items) }); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l, 3)
	rows, err := db.Query("SELECT object_id, user_id, username, region_code, client_addr, user_agent FROM audit_log ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var obj, user, region, addr, agent string
		var id int64
		if err := rows.Scan(&obj, &id, &user, &region, &addr, &agent); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(obj, id, user, region, addr, agent))
	}
	want := []string{"17sampler_a33030500110.0.0.7phone A", "28sampler_b33030500210.0.0.8phone B", "37sampler_a33030500110.0.0.7phone A"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries %q, want %q", got, want)
	}
}

func TestAppendOnly(t *testing.T) {
	l, db := newLog(t)
	for range 3 {
		if err := l.RecordOutside(context.Background(), Entry{Action: "user.login"}); err != nil {
			t.Fatal(err)
		}
	}
	stmts := []string{
		"UPDATE audit_log SET outcome = 'denied' WHERE id = 2",
		"DELETE FROM audit_log WHERE id = 2",
		"DELETE FROM audit_log",
	}
	if db.Dialect == storage.Postgres {
		stmts = append(stmts, "TRUNCATE audit_log")
	}
	for _, s := range stmts {
		_, err := db.Exec(s)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", s, err)
		}
	}
	mustVerify(t, l, 3)
}

// disableAppendOnly lets a test play the attacker who got past the trigger.
func disableAppendOnly(t *testing.T, db *storage.DB) {
	t.Helper()
	stmts := []string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"}
	if db.Dialect == storage.Postgres {
		stmts = []string{"ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"}
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name     string
		tamper   []string
		firstBad int64
		reason   string
	}{
		{"changed field", []string{"UPDATE audit_log SET outcome = 'ok' WHERE id = 3"}, 3, "changed"},
		{"changed time", []string{"UPDATE audit_log SET at = at + 1 WHERE id = 5"}, 5, "changed"},
		{"changed first entry", []string{"UPDATE audit_log SET username = 'x' WHERE id = 1"}, 1, "changed"},
		{"deleted entry", []string{"DELETE FROM audit_log WHERE id = 4"}, 5, "entry 4 is missing"},
		{"deleted entries", []string{"DELETE FROM audit_log WHERE id IN (2, 3)"}, 4, "entries 2 to 3 are missing"},
		{"deleted first entry", []string{"DELETE FROM audit_log WHERE id = 1"}, 2, "entry 1 is missing"},
		{"forged hash after change", []string{
			"UPDATE audit_log SET detail = 'nothing', hash = '" + strings.Repeat("a", 64) + "' WHERE id = 3"}, 3, "changed"},
		{"re-ordered entries", []string{
			"UPDATE audit_log SET id = 100 WHERE id = 2",
			"UPDATE audit_log SET id = 2 WHERE id = 3",
			"UPDATE audit_log SET id = 3 WHERE id = 100"}, 2, "prev_hash does not match entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db := newLog(t)
			for i := range 6 {
				out := OK
				if i == 2 {
					out = Denied
				}
				if err := l.RecordOutside(userCtx(1, "li", "3303"), Entry{Action: "person.read", ObjectID: fmt.Sprint(i), Outcome: out}); err != nil {
					t.Fatal(err)
				}
			}
			mustVerify(t, l, 6)
			disableAppendOnly(t, db)
			for _, s := range tt.tamper {
				if _, err := db.Exec(s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			rep, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.FirstBad != tt.firstBad || !strings.Contains(rep.Reason, tt.reason) {
				t.Fatalf("Verify = %+v, want first bad %d with %q", rep, tt.firstBad, tt.reason)
			}
		})
	}
}

func TestVerifyEmptyChain(t *testing.T) {
	l, _ := newLog(t)
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Entries != 0 || rep.LastHash != GenesisHash {
		t.Fatalf("Verify = %+v", rep)
	}
}

func TestListIsScopedAndFiltered(t *testing.T) {
	l, _ := newLog(t)
	actors := []context.Context{
		userCtx(1, "a", "330305001", scope.Sampler),  // township A
		userCtx(2, "b", "330305002", scope.Sampler),  // township B
		userCtx(3, "c", "330305", scope.BureauAdmin), // the district
	}
	for i := range 3 {
		for j, ctx := range actors {
			out := OK
			if j == 1 {
				out = Denied
			}
			if err := l.RecordOutside(ctx, Entry{Action: "person.read", ObjectType: "person", ObjectID: fmt.Sprint(i), Outcome: out}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.RecordOutside(actors[0], Entry{Action: "user.login"}); err != nil {
		t.Fatal(err)
	}
	townshipAdmin := userCtx(9, "ta", "330305001", scope.BureauAdmin)
	district := userCtx(10, "da", "330305", scope.BureauAdmin)
	tests := []struct {
		name  string
		ctx   context.Context
		f     Filter
		users []string // usernames of the items, newest first
	}{
		{"township admin sees only the township", townshipAdmin, Filter{}, []string{"a", "a", "a", "a"}},
		{"district admin sees all", district, Filter{Action: "person.read", ObjectID: "2"}, []string{"c", "b", "a"}},
		{"user filter", district, Filter{Username: "b"}, []string{"b", "b", "b"}},
		{"outcome filter", district, Filter{Outcome: Denied, ObjectID: "0"}, []string{"b"}},
		{"action prefix", townshipAdmin, Filter{Action: "user."}, []string{"a"}},
		{"object filter", townshipAdmin, Filter{ObjectType: "person", ObjectID: "1"}, []string{"a"}},
		{"date window", district, Filter{From: testNow.Add(time.Second)}, nil},
		{"date window includes", district, Filter{From: testNow, To: testNow.Add(time.Millisecond), Username: "c"}, []string{"c", "c", "c"}},
		{"township B's entries are not township A's", townshipAdmin, Filter{Username: "b"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, next, err := l.List(tt.ctx, tt.f, 50)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.Username)
			}
			if strings.Join(got, ",") != strings.Join(tt.users, ",") || next != 0 {
				t.Fatalf("got %v (next %d), want %v", got, next, tt.users)
			}
		})
	}
	if _, _, err := l.List(userCtx(4, "s", "330305", scope.Sampler), Filter{}, 10); err == nil {
		t.Error("a sampler listed the audit log")
	}
	if _, _, err := l.List(district, Filter{Outcome: "meh"}, 10); err == nil {
		t.Error("unknown outcome accepted")
	}
}

// TestAboutShowsEveryAccessToARecord: the entries about one record reach an
// admin whose scope covers the record, whoever made them — including actors
// the audit page's actor scope hides from that admin — and nothing else.
func TestAboutShowsEveryAccessToARecord(t *testing.T) {
	l, _ := newLog(t)
	township := userCtx(1, "township_doctor", "330305001", scope.FamilyDoctor)
	city := userCtx(2, "city_epi", "3303", scope.Epidemiologist)
	system := scope.WithPrincipal(context.Background(), scope.System())
	for _, e := range []struct {
		ctx context.Context
		e   Entry
	}{
		{system, Entry{Action: "person.create", ObjectType: "person", ObjectID: "7"}},
		{township, Entry{Action: "person.read", ObjectType: "person", ObjectID: "7"}},
		{township, Entry{Action: "person.unmask", ObjectType: "person", ObjectID: "7", Detail: "reason: follow-up call"}},
		{city, Entry{Action: "person.read", ObjectType: "person", ObjectID: "7"}},
		{township, Entry{Action: "person.read", ObjectType: "person", ObjectID: "8"}},      // another person
		{township, Entry{Action: "person.read", ObjectType: "institution", ObjectID: "7"}}, // another kind of record
		{township, Entry{Action: "person.search", ObjectType: "person", Detail: "q=name"}}, // no object
	} {
		if err := l.RecordOutside(e.ctx, e.e); err != nil {
			t.Fatal(err)
		}
	}
	person7 := Object{Type: "person", ID: "7", RegionCode: "330305001001"}
	district := userCtx(10, "da", "330305", scope.BureauAdmin)
	tests := []struct {
		name    string
		ctx     context.Context
		obj     Object
		limit   int
		want    []string // "username action", newest first
		wantErr bool
	}{
		{"district admin sees every access", district, person7, 20,
			[]string{"city_epi person.read", "township_doctor person.unmask", "township_doctor person.read", "system person.create"}, false},
		{"limit keeps the newest", district, person7, 2, []string{"city_epi person.read", "township_doctor person.unmask"}, false},
		{"township admin of the person's township", userCtx(11, "ta", "330305001", scope.BureauAdmin), person7, 20,
			[]string{"city_epi person.read", "township_doctor person.unmask", "township_doctor person.read", "system person.create"}, false},
		{"admin of another township", userCtx(12, "tb", "330305002", scope.BureauAdmin), person7, 20, nil, true},
		{"institution-scoped admin, other institution", scope.WithPrincipal(context.Background(), &scope.Principal{UserID: 13,
			Username: "ia", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305", InstitutionID: 5}),
			Object{Type: "person", ID: "7", RegionCode: "330305001001", InstitutionID: 6}, 20, nil, true},
		{"not an admin", township, person7, 20, nil, true},
		{"no object id", district, Object{Type: "person", RegionCode: "330305001001"}, 20, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := l.About(tt.ctx, tt.obj, tt.limit)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("About = %v, want an error", items)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.Username+" "+it.Action)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// The audit page keeps its actor scope: the district admin's list of
	// person 7 lacks the city and system entries.
	items, _, err := l.List(district, Filter{ObjectType: "person", ObjectID: "7"}, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Errorf("List for the district admin = %d entries, want the township doctor's 2", len(items))
	}
}

func TestListPages(t *testing.T) {
	l, _ := newLog(t)
	ctx := userCtx(1, "a", "3303", scope.BureauAdmin)
	for i := range 7 {
		if err := l.RecordOutside(ctx, Entry{Action: "person.read", ObjectID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var f Filter
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		items, next, err := l.List(ctx, f, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			got = append(got, it.ObjectID)
		}
		if next == 0 {
			break
		}
		f.Before = next
	}
	if strings.Join(got, "") != "6543210" {
		t.Fatalf("pages gave %v", got)
	}
}

// An attacker who changes an entry and recomputes its hash is caught by the
// next entry, whose prev_hash still names the original.
func TestVerifyFindsRecomputedHash(t *testing.T) {
	l, db := newLog(t)
	for i := range 5 {
		if err := l.RecordOutside(userCtx(1, "li", "3303"), Entry{Action: "person.read", ObjectID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var r row
	if err := scanRow(db.QueryRow("SELECT "+selectColumns+" FROM audit_log WHERE id = 3"), &r); err != nil {
		t.Fatal(err)
	}
	r.ObjectID = "999"
	disableAppendOnly(t, db)
	if _, err := db.Exec("UPDATE audit_log SET object_id = $1, hash = $2 WHERE id = 3", r.ObjectID, r.hash()); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstBad != 4 || !strings.Contains(rep.Reason, "prev_hash does not match entry 3") {
		t.Fatalf("Verify = %+v", rep)
	}
}
