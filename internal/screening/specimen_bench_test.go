package screening

import (
	"fmt"
	"math/rand/v2"
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
