package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// drive is the loop of the benchmarks that call an operation over and over: workers
// goroutines each call op until duration has passed or, when count is positive, until count
// calls have begun in all; ctx ending stops them too. Each worker has its own random source,
// seeded with seed and its number, and numbers its calls from 0.
type drive struct {
	workers  int
	count    int
	duration time.Duration
	seed     uint64
	// op makes one call. It returns nil for a call that did what it should (a version conflict
	// included, which the caller counts itself) and the error of one that failed.
	op func(ctx context.Context, worker, call int, rng *rand.Rand) error
	// progress, when not nil, runs while the workers do, from start until the returned stop
	// is called.
	progress func(start time.Time) (stop func())

	failures atomic.Int64 // calls that failed, so far
}

// driven is what a drive measured: every call's latency, sorted; how long it ran; and the
// first failure, if any. A call cut short by ctx ending is neither a measurement nor a failure.
type driven struct {
	latencies []time.Duration
	elapsed   float64 // seconds
	firstErr  error
}

func (d *drive) run(ctx context.Context) driven {
	var (
		attempts atomic.Int64 // calls begun, against d.count
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	latencies := make([][]time.Duration, d.workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(d.duration)
	// more says whether a worker may begin another call, taking one of d.count if it is set.
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if d.count > 0 {
			return attempts.Add(1) <= int64(d.count)
		}
		return time.Now().Before(deadline)
	}
	for w := 0; w < d.workers; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(d.seed, uint64(w))) //nolint:gosec // choices of streams and ids, not secrets
			lat := make([]time.Duration, 0, 4096)
			for n := 0; more(); n++ {
				t0 := time.Now()
				err := d.op(ctx, w, n, rng)
				lat = append(lat, time.Since(t0))
				switch {
				case err == nil:
				case ctx.Err() != nil:
					lat = lat[:len(lat)-1] // cut short by the caller: not a measurement
				default:
					d.failures.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
			latencies[w] = lat
		})
	}
	stopProgress := func() {}
	if d.progress != nil {
		stopProgress = d.progress(start)
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start).Seconds()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	return driven{latencies: all, elapsed: elapsed, firstErr: firstErr}
}
