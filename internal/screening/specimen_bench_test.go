package screening

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRegister registers b.N specimens from 256 concurrent samplers,
// each filling its own tubes of 10 with persons new to the registry, through
// the group commit and durably — the store's share of a registration,
// without HTTP. It reports specimens/s and the mean batch size.
//
//	go test -run '^$' -bench Register -benchtime 50000x ./internal/screening
func BenchmarkRegister(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { benchmarkRegister(b, false) })
	b.Run("random", func(b *testing.B) { benchmarkRegister(b, true) })
}

// benchmarkRegister registers b.N new persons, in ID order or at random.
func benchmarkRegister(b *testing.B, randomPersons bool) {
	f := newFixture(b)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	f.clock.Advance(time.Hour + time.Duration(b.N)*time.Second) // sampling times lie in the past
	var batches, items, busy atomic.Int64
	f.svc.Close()
	f.svc = New(Deps{DB: f.db, Tree: f.tree, People: f.svc.people, Institutions: f.svc.institutions, Audit: f.audit,
		Deadlines: f.svc.deadlines, Settings: f.svc.settings, Now: f.clock.Now},
		Options{OnBatch: func(size int, took time.Duration, _ error) {
			batches.Add(1)
			items.Add(int64(size))
			busy.Add(int64(took))
		}})
	defer f.svc.Close()
	const samplers = 256
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	begin := time.Now()
	for s := range samplers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := f.samplerA()
			for k := 0; ; k++ {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				in := specimen(c, pt, fmt.Sprintf("B%03d-%06d", s, k/10), i, villageA)
				in.ClientID = fmt.Sprintf("%016x-%d", rand.Uint64(), i)
				if randomPersons {
					// People arrive in no order: their ID numbers, phones
					// and names land all over the registry's indexes.
					in.Person.IDNumber = residentID(int(rand.Uint32() % 20_000_000))
					in.Person.Phone = fmt.Sprintf("13%09d", rand.Uint32()%1_000_000_000)
					in.Person.Name = string([]rune("赵钱孙李周吴郑王冯陈")[rand.IntN(10)]) + string([]rune("伟芳娜敏静丽强磊军洋")[rand.IntN(10)])
				}
				if _, err := f.svc.RegisterSpecimen(ctx, in); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "specimens/s")
	if n := batches.Load(); n > 0 {
		b.ReportMetric(float64(items.Load())/float64(n), "items/batch")
		b.ReportMetric(float64(busy.Load())/float64(n)/1e6, "ms/batch")
	}
}

// BenchmarkPositiveToRecalls measures the issue's "a positive tube result →
// its recall list readable ≤ 1 s later" while 256 samplers register
// specimens as fast as the store takes them: each iteration records one
// positive tube of 10 (as the lab) and reads the campaign's recall list (as
// the township) until that tube's members are on it. It reports the median
// and the slowest time from the result's submission to the list showing it,
// and the registrations committed meanwhile.
//
//	go test -run '^$' -bench PositiveToRecalls -benchtime 20x ./internal/screening
func BenchmarkPositiveToRecalls(b *testing.B) {
	f := newFixture(b)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = fmt.Sprintf("P%05d", i)
		seedTube(f, c, pt, codes[i], 10, repeat(villageA, 10)...)
		handTo(f, f.labID, codes[i])
	}
	f.clock.Advance(time.Hour)
	stop := make(chan struct{})
	var registered atomic.Int64
	var wg sync.WaitGroup
	for s := range 256 {
		wg.Go(func() {
			ctx := f.samplerA()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				in := specimen(c, pt, fmt.Sprintf("L%03d-%06d", s, k/10), 1_000_000+s*100_000+k, villageA)
				in.ClientID = fmt.Sprintf("load-%d-%d", s, k)
				in.SampledAt = start.Add(30 * time.Minute).Format(time.RFC3339)
				if _, err := f.svc.RegisterSpecimen(ctx, in); err != nil {
					b.Error(err)
					return
				}
				registered.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the registrations are flowing
	lab, township := f.lab(), f.townshipStaffA()
	took := make([]time.Duration, 0, b.N)
	before := registered.Load()
	begin := time.Now()
	b.ResetTimer()
	for i, code := range codes {
		t0 := time.Now()
		rep, err := f.svc.RecordResults(lab, []ResultInput{{TubeCode: code, Result: Positive, TestedAt: f.clock.Now().Add(-time.Minute).Format(time.RFC3339)}})
		if err != nil || rep.Accepted != 1 {
			b.Fatalf("record %s: %+v, %v", code, rep, err)
		}
		for {
			items, _, err := f.svc.Recalls(township, RecallQuery{CampaignID: c, Limit: 1000})
			if err != nil {
				b.Fatal(err)
			}
			if len(items) >= 10*(i+1) {
				break
			}
		}
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	during := registered.Load() - before
	elapsed := time.Since(begin)
	close(stop)
	wg.Wait()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "ms-max")
	b.ReportMetric(float64(during)/elapsed.Seconds(), "registrations/s")
}
