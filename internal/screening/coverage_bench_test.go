package screening

import (
	"testing"

	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
)

// BenchmarkCoverage reads the coverage of a whole-city campaign (保定市,
// 1306) whose counters say 10 million residents were targeted and sampled:
// one counter row per village, however many specimens there are.
//
//	go test -run '^$' -bench Coverage ./internal/screening
func BenchmarkCoverage(b *testing.B) {
	f := newFixture(b)
	const city = "1306"
	var c int64
	if err := f.db.QueryRow(`INSERT INTO campaigns (name, pathogen, pool_size, starts_at, ends_at, results_due_at, region_code,
		created_at, updated_at) VALUES ('全市核酸', 'sars_cov_2', 10, 1, 2, 3, $1, 1, 1) RETURNING id`, city).Scan(&c); err != nil {
		b.Fatal(err)
	}
	villages := f.tree.Descendants(city, regions.Village)
	if len(villages) < 1000 {
		b.Fatalf("only %d villages under %s", len(villages), city)
	}
	per := int64(10_000_000 / len(villages))
	tx, err := f.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range villages {
		if d := v.Code[:6]; !seen[d] {
			seen[d] = true
			if _, err := tx.Exec("INSERT INTO campaign_regions (campaign_id, region_code) VALUES ($1, $2)", c, d); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := tx.Exec(`INSERT INTO coverage (campaign_id, region_code, targeted, sampled, resulted, positive)
			VALUES ($1, $2, $3, $4, $5, 0)`, c, v.Code, per, per*9/10, per*8/10); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	ctx := as(&scope.Principal{UserID: 1, Username: "city", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: city})
	for b.Loop() {
		cov, err := f.svc.Coverage(ctx, c, city)
		if err != nil {
			b.Fatal(err)
		}
		if cov.Targeted < 9_000_000 || len(cov.Children) != len(seen) {
			b.Fatalf("targeted %d in %d children", cov.Targeted, len(cov.Children))
		}
	}
	b.ReportMetric(float64(len(villages)), "villages")
}
