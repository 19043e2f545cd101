package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/screening"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// cheapHash keeps the eight users' password hashing fast in tests.
var cheapHash = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

var today = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func load(t *testing.T, db *storage.DB, tree *regions.Tree, opts Options) Result {
	t.Helper()
	opts.Now, opts.Hash = today, cheapHash
	res, err := Load(context.Background(), db, tree, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return res
}

func TestLoad(t *testing.T) {
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	db := storagetest.Open(t, regions.Migrations, audit.Migrations, auth.Migrations, settings.Migrations, deadlines.Migrations, people.Migrations, screening.Migrations)
	const n = 300
	res := load(t, db, tree, Options{Region: "330305", People: n, Seed: 7})
	ctx := context.Background()

	townships := len(tree.Descendants("330305", regions.Township)) // 8
	want := map[regions.InstitutionType]int{
		regions.Bureau: 1, regions.CDC: 1, regions.Hospital: 1, regions.Lab: 1, regions.IsolationSite: 1,
		regions.TownshipHealthCentre: townships,
		// 300 residents round to no point anywhere, and every township gets one.
		regions.SamplingPoint: townships,
	}
	for typ, w := range want {
		var got int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM institutions WHERE type = $1`, string(typ)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != w || res.Institutions[typ] != w {
			t.Errorf("%s: %d in the database, %d reported; want %d", typ, got, res.Institutions[typ], w)
		}
	}
	// The screening round ran through the module's rules: specimens
	// counted in coverage, the positive tube's members recalled and its
	// report due.
	sc := res.Screening
	if sc.Points != townships || sc.Specimens < n/2 || sc.Resulted == 0 || sc.Positives != 1 {
		t.Errorf("screening round: %+v", sc)
	}
	for query, min := range map[string]int{
		"SELECT COUNT(*) FROM specimens":                                 sc.Specimens,
		"SELECT SUM(sampled) FROM coverage":                              sc.Specimens,
		"SELECT COUNT(*) FROM recalls WHERE reason = 'positive'":         2,
		"SELECT COUNT(*) FROM deadlines WHERE kind = 'positive_report'":  2,
		"SELECT COUNT(*) FROM tubes WHERE state = 'resulted'":            sc.Resulted,
		"SELECT COUNT(*) FROM tubes WHERE state IN ('open', 'received')": 1,
	} {
		var got int
		if err := db.QueryRowContext(ctx, query).Scan(&got); err != nil || got < min {
			t.Errorf("%s = %d (%v), want at least %d", query, got, err, min)
		}
	}

	var centres []string
	rows, err := db.QueryContext(ctx, `SELECT name FROM institutions WHERE type = 'township_health_centre' ORDER BY region_code`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		centres = append(centres, s)
	}
	rows.Close()
	if centres[0] != "北岙街道社区卫生服务中心" || centres[len(centres)-1] != "鹿西乡卫生院" {
		t.Errorf("centres = %v", centres)
	}

	// Every resident has a valid ID number issued in the district.
	rows, err = db.QueryContext(ctx, `SELECT id_number, name, sex, birth_date, phone, no_phone, region_code, tags FROM persons`)
	if err != nil {
		t.Fatal(err)
	}
	count, elderly, noPhone := 0, 0, 0
	for rows.Next() {
		var id, name, sex, birth, phone, region, tags string
		var np bool
		if err := rows.Scan(&id, &name, &sex, &birth, &phone, &np, &region, &tags); err != nil {
			t.Fatal(err)
		}
		count++
		rid, err := people.ParseResidentID(id, today)
		if err != nil {
			t.Fatalf("resident ID %s: %v", id, err)
		}
		if rid.RegionCode != "330305" || rid.BirthDate.Format("2006-01-02") != birth || string(rid.Sex) != sex {
			t.Fatalf("ID %s disagrees with row: birth %s sex %s", id, birth, sex)
		}
		if !strings.HasPrefix(region, "330305") || len(region) != 12 {
			t.Fatalf("resident region %s is not a village of 330305", region)
		}
		if n := len([]rune(name)); n < 2 || n > 4 {
			t.Fatalf("name %q", name)
		}
		isElderly := people.AgeOn(rid.BirthDate, today) >= 65
		if isElderly != strings.Contains(tags, "elderly") {
			t.Fatalf("%s born %s has tags %q", id, birth, tags)
		}
		if isElderly {
			elderly++
		}
		if np {
			noPhone++
			if !isElderly || phone != "" {
				t.Fatalf("no_phone resident: elderly %v phone %q", isElderly, phone)
			}
		} else if _, err := people.NormalizePhone(phone); err != nil {
			t.Fatalf("phone %q: %v", phone, err)
		}
	}
	rows.Close()
	if count != n || res.People != n {
		t.Fatalf("%d residents stored, %d reported; want %d", count, res.People, n)
	}
	if elderly < n/8 || elderly > n/3 {
		t.Errorf("%d of %d elderly, want about a quarter", elderly, n)
	}
	if noPhone == 0 {
		t.Errorf("no elderly resident without a phone")
	}

	// One user per role, scoped as the demo promises.
	for _, tc := range []struct{ username, role, instType string }{
		{"admin", "bureau_admin", ""}, {"cdc", "epidemiologist", ""}, {"inspector", "inspector", ""},
		{"hospital", "institution_staff", "hospital"}, {"sampler", "sampler", "sampling_point"},
		{"lab", "lab", "lab"}, {"isolation", "isolation_staff", "isolation_site"}, {"doctor", "family_doctor", "township_health_centre"},
	} {
		var roles, region, instType string
		err := db.QueryRowContext(ctx, `SELECT u.roles, u.region_code, COALESCE(i.type, '') FROM users u
			LEFT JOIN institutions i ON i.id = u.institution_id WHERE u.username = $1`, tc.username).Scan(&roles, &region, &instType)
		if err != nil {
			t.Fatalf("user %s: %v", tc.username, err)
		}
		if roles != tc.role || instType != tc.instType || !strings.HasPrefix(region, "330305") {
			t.Errorf("user %s: roles %q region %s institution type %q", tc.username, roles, region, instType)
		}
	}
	if len(res.Logins) != len(Usernames) {
		t.Errorf("%d logins reported", len(res.Logins))
	}

	// A second run changes nothing.
	again := load(t, db, tree, Options{Region: "330305", People: n, Seed: 7})
	var persons int
	_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM persons`).Scan(&persons)
	if !again.AlreadyLoaded || persons != n {
		t.Fatalf("second run: already loaded %v, %d persons", again.AlreadyLoaded, persons)
	}
}

func TestLoadIsDeterministic(t *testing.T) {
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	ids := func(seed uint64) string {
		db := storagetest.Open(t, regions.Migrations, audit.Migrations, auth.Migrations, settings.Migrations, deadlines.Migrations, people.Migrations, screening.Migrations)
		load(t, db, tree, Options{Region: "330305", People: 50, Seed: seed})
		var b strings.Builder
		rows, err := db.QueryContext(context.Background(), `SELECT id_number || name || phone || address FROM persons ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			b.WriteString(s)
		}
		return b.String()
	}
	a, b, c := ids(1), ids(1), ids(2)
	if a != b {
		t.Error("the same seed gave different residents")
	}
	if a == c {
		t.Error("different seeds gave the same residents")
	}
}

func TestLoadRejectsBadRegion(t *testing.T) {
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	db := storagetest.Open(t, regions.Migrations, audit.Migrations, auth.Migrations, settings.Migrations, deadlines.Migrations, people.Migrations, screening.Migrations)
	for _, code := range []string{"33", "330305001", "999999", "x"} {
		if _, err := Load(context.Background(), db, tree, Options{Region: code, People: 1, Now: today}); err == nil {
			t.Errorf("Load(%q) succeeded", code)
		}
	}
}

func TestPlanSpreadsPointsByResidents(t *testing.T) {
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := tree.Lookup("330305")
	p := planDistrict(newRand(3), tree, d, tree.Descendants("330305", regions.Township), 150_000)
	residents, points := 0, 0
	for _, t := range p.townships {
		residents += t.residents
		points += t.points
	}
	if residents != 150_000 {
		t.Fatalf("plan holds %d residents", residents)
	}
	if points < 55 || points > 65 {
		t.Errorf("%d sampling points for 150,000 residents, want about 60", points)
	}
}
