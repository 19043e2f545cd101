package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/screening"
	"github.com/shaobing/shaobing/internal/storage"
)

// ScreeningShare is the share of residents sampled so far in the demo's
// running round: the coverage page then has both sampled and not-sampled
// people to show.
const ScreeningShare = 0.7

// Screening says what the demo's screening round holds.
type Screening struct {
	CampaignID int64
	Points     int
	Specimens  int
	Tubes      int
	Resulted   int
	Positives  int
}

// demoResident is a registered resident, as a sampler would type them in.
type demoResident struct {
	idType, idNumber, name, phone, region string
	noPhone                               bool
}

// loadScreening runs the first hours of a whole-district testing round
// through the screening module's own rules: a campaign of 10-in-1 pools,
// every sampling point taking part, most residents sampled at a point of
// their township, full tubes handed to the lab in boxes, most of them
// resulted — negative but for a positive, a suspicious and an invalid tube,
// whose members are then to be recalled.
func loadScreening(ctx context.Context, db *storage.DB, tree *regions.Tree, now func() time.Time, r *rand.Rand, p plan, inst *institutions) (Screening, error) {
	svc := screening.Standalone(db, tree, now)
	defer svc.Close()
	var out Screening
	t0 := now()
	var targets []string
	if p.region.Level == regions.District {
		targets = []string{p.region.Code}
	} else {
		seen := map[string]bool{}
		for _, t := range p.townships {
			if d := t.Code[:6]; !seen[d] {
				seen[d] = true
				targets = append(targets, d)
			}
		}
	}
	c, err := svc.CreateCampaign(ctx, screening.NewCampaign{Name: t0.In(time.FixedZone("CST", 8*3600)).Format("2006年1月2日") + "全员核酸筛查",
		Pathogen: screening.SARSCoV2, RegionCodes: targets, PoolSize: 10, StartsAt: t0.Add(-10 * time.Hour), EndsAt: t0.Add(14 * time.Hour)})
	if err != nil {
		return out, fmt.Errorf("demo: campaign: %w", err)
	}
	out.CampaignID = c.ID
	type point struct {
		id   int64
		inst regions.Institution
	}
	points := map[string][]point{} // township → its points
	for _, t := range p.townships {
		for _, in := range inst.points[t.Code] {
			sp, err := svc.CreateSamplingPoint(ctx, screening.NewSamplingPoint{CampaignID: c.ID, InstitutionID: in.ID, Name: in.Name,
				RegionCode: in.RegionCode, Opens: "07:00", Closes: "21:00", CapacityPerHour: 180, Samplers: 4})
			if err != nil {
				return out, fmt.Errorf("demo: sampling point %s: %w", in.Name, err)
			}
			points[t.Code] = append(points[t.Code], point{id: sp.ID, inst: in})
			out.Points++
		}
	}

	residents, err := readResidents(ctx, db, p.region.Code)
	if err != nil {
		return out, err
	}
	// Each point fills its tubes in turn; the last tube of a point stays
	// open, as it would at a point still working.
	var jobs []screening.NewSpecimen
	fill := map[int64]int{} // point → specimens so far
	for i, res := range residents {
		if r.Float64() >= ScreeningShare {
			continue
		}
		pts := points[res.region[:min(9, len(res.region))]]
		if len(pts) == 0 {
			continue
		}
		pt := pts[r.IntN(len(pts))]
		n := fill[pt.id]
		fill[pt.id]++
		jobs = append(jobs, screening.NewSpecimen{
			ClientID: fmt.Sprintf("demo-%d", i), CampaignID: c.ID, SamplingPointID: pt.id,
			TubeCode: fmt.Sprintf("DT%05d%04d", pt.id, n/10), SampledAt: t0.Add(-9*time.Hour + time.Duration(r.IntN(8*3600))*time.Second).Format(time.RFC3339),
			Person: screening.SpecimenPerson{IDType: res.idType, IDNumber: res.idNumber, Name: res.name, Phone: res.phone,
				RegionCode: res.region, NoPhone: res.noPhone},
		})
	}
	if err := registerAll(ctx, svc, jobs); err != nil {
		return out, err
	}
	out.Specimens = len(jobs)

	// Hand every full tube of a point to the lab in one box; the lab
	// receives the boxes and results all but the last box's tubes.
	labCtx := scope.WithPrincipal(ctx, &scope.Principal{Username: "demo-lab", Roles: []scope.Role{scope.Lab},
		RegionCode: inst.lab.RegionCode, InstitutionID: inst.lab.ID})
	var results []screening.ResultInput
	box := 0
	for _, t := range p.townships {
		for _, pt := range points[t.Code] {
			n := fill[pt.id]
			full := n / 10
			out.Tubes += (n + 9) / 10
			if full == 0 {
				continue
			}
			var codes []string
			for k := range full {
				codes = append(codes, fmt.Sprintf("DT%05d%04d", pt.id, k))
			}
			box++
			b, _, err := svc.CreateBatch(ctx, screening.NewBatch{Code: fmt.Sprintf("BOX%05d", box), LabID: inst.lab.ID, TubeCodes: codes})
			if err != nil {
				return out, fmt.Errorf("demo: hand over %s: %w", pt.inst.Name, err)
			}
			if _, err := svc.ReceiveBatch(labCtx, b.Code); err != nil {
				return out, fmt.Errorf("demo: receive %s: %w", b.Code, err)
			}
			for _, code := range codes {
				results = append(results, screening.ResultInput{TubeCode: code, Result: screening.Negative,
					TestedAt: t0.Add(-time.Duration(r.IntN(3*3600)) * time.Second).Format(time.RFC3339)})
			}
		}
	}
	// A tenth of the received tubes are still in the lab; a few results
	// are not negative.
	results = results[:len(results)*9/10]
	for i, res := range []screening.Result{screening.Positive, screening.Suspicious, screening.Invalid} {
		if k := (i*7 + 3) * len(results) / 25; k < len(results) {
			results[k].Result = res
			if res != screening.Invalid {
				ct := 28.5 + float64(i)
				results[k].CtORF1ab, results[k].CtN = &ct, &ct
			}
		}
	}
	rep, err := svc.RecordResults(labCtx, results)
	if err != nil {
		return out, fmt.Errorf("demo: results: %w", err)
	}
	if len(rep.Rejected) > 0 {
		return out, fmt.Errorf("demo: results rejected: %v", rep.Rejected[0])
	}
	out.Resulted = rep.Accepted
	out.Positives = len(rep.PositiveTubes)
	return out, nil
}

// registerAll registers specimens concurrently, as many samplers would, so
// the group commit batches them.
func registerAll(ctx context.Context, svc *screening.Service, jobs []screening.NewSpecimen) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan screening.NewSpecimen)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range next {
				if _, err := svc.RegisterSpecimen(ctx, in); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("demo: register specimen %s: %w", in.ClientID, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, in := range jobs {
		next <- in
	}
	close(next)
	wg.Wait()
	return first
}

// readResidents reads the registered residents of a region, in id order.
func readResidents(ctx context.Context, db *storage.DB, region string) ([]demoResident, error) {
	var a storage.Args
	rows, err := db.QueryContext(ctx, "SELECT id_type, id_number, name, phone, no_phone, region_code FROM persons p WHERE "+
		scope.RegionPrefix(&a, "p.region_code", region)+" ORDER BY id", a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("demo: read residents: %w", err)
	}
	defer rows.Close()
	var out []demoResident
	for rows.Next() {
		var d demoResident
		if err := rows.Scan(&d.idType, &d.idNumber, &d.name, &d.phone, &d.noPhone, &d.region); err != nil {
			return nil, fmt.Errorf("demo: read residents: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
