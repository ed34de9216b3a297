// Package bench measures Strata against the PostgreSQL it runs on. Its numbers are meant to be
// read next to ../shared/tools/pg-baseline.sh run on the same server at the same time: the
// machine is shared and its speed drifts, so only ratios carry over.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// AppendOptions configures an append benchmark.
type AppendOptions struct {
	Writers  int           // concurrent writers, each appending in a loop
	Batch    int           // events per append
	Duration time.Duration // how long to measure, when Count is 0
	// Count, when positive, is how many appends to attempt in all, over all writers: the run
	// ends once they have completed (or ctx ends), whatever Duration says.
	Count int
	// Hot, when positive, makes writers append to this many shared streams with the expected
	// version they last saw, so that conflicts happen; 0 appends each batch to a fresh stream.
	Hot int
	// Progress, when not nil, receives a line per second.
	Progress io.Writer
	// Category is the streams' category; empty means "order". The GraphQL API keeps the
	// domain's categories to their aggregates, so its benchmark appends to another.
	Category string
}

// AppendResult is what an append benchmark measured; it prints as one JSON line.
type AppendResult struct {
	Writers       int     `json:"writers"`
	Batch         int     `json:"batch"`
	Hot           int     `json:"hot"`
	Seconds       float64 `json:"seconds"`
	Appends       int64   `json:"appends"`
	Events        int64   `json:"events"`
	EventsPerSec  float64 `json:"events_per_sec"`
	AppendsPerSec float64 `json:"appends_per_sec"`
	Conflicts     int64   `json:"conflicts"`
	Errors        int64   `json:"errors"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
}

// Validate checks the options before anything runs.
func (o AppendOptions) Validate() error {
	var errs []error
	if o.Writers < 1 || o.Writers > 10000 {
		errs = append(errs, fmt.Errorf("--writers must be from 1 to 10000, not %d", o.Writers))
	}
	if o.Batch < 1 {
		errs = append(errs, fmt.Errorf("--batch must be at least 1, not %d", o.Batch))
	}
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("--appends must not be negative, not %d", o.Count))
	}
	if o.Count == 0 && o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration must be positive, not %s", o.Duration))
	}
	if o.Hot < 0 {
		errs = append(errs, fmt.Errorf("--hot must not be negative, not %d", o.Hot))
	}
	return errors.Join(errs...)
}

// The payloads match pg-baseline.sh's rows, so the comparison is of like with like.
const (
	singlePayload = `{"orderId":"o1","items":[{"sku":"A","qty":2,"price":9.99}],"customer":"c-123"}`
	batchPayload  = `{"orderId":"o1","sku":"A","qty":2,"price":9.99}`
)

// Appender is what the append benchmark drives: the store itself, or a client of the server's
// GraphQL API (GraphQLAppender).
type Appender interface {
	Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error)
}

// Append runs the benchmark against store. Appends that fail for any reason but a version
// conflict are counted in Errors, and the first of them is returned with the result.
func Append(ctx context.Context, store Appender, opts AppendOptions) (AppendResult, error) {
	if err := opts.Validate(); err != nil {
		return AppendResult{}, err
	}
	events := make([]eventstore.EventData, opts.Batch)
	for i := range events {
		events[i] = eventstore.EventData{Type: "OrderItemAdded", Data: json.RawMessage(batchPayload)}
	}
	if opts.Batch == 1 {
		events[0] = eventstore.EventData{Type: "TicketIssued", Data: json.RawMessage(singlePayload)}
	}
	run := time.Now().UnixNano()
	category := opts.Category
	if category == "" {
		category = "order"
	}

	var appends, conflicts atomic.Int64
	seen := make([][]int64, opts.Writers) // each writer's idea of each hot stream's version
	for w := range seen {
		seen[w] = make([]int64, opts.Hot)
	}
	d := &drive{workers: opts.Writers, count: opts.Count, duration: opts.Duration, seed: uint64(run)} //nolint:gosec // a time, positive
	d.op = func(ctx context.Context, w, n int, rng *rand.Rand) error {
		stream, expected := fmt.Sprintf("%s-bench%x-%d-%d", category, run, w, n), eventstore.NoStream()
		hot := -1
		if opts.Hot > 0 {
			hot = rng.IntN(opts.Hot)
			stream, expected = fmt.Sprintf("%s-hot%x-%d", category, run, hot), eventstore.Exactly(seen[w][hot])
		}
		res, err := store.Append(ctx, stream, expected, events)
		var wrong *eventstore.WrongExpectedVersionError
		switch {
		case err == nil:
			appends.Add(1)
			if hot >= 0 {
				seen[w][hot] = res.NextExpectedVersion
			}
		case errors.As(err, &wrong):
			conflicts.Add(1)
			seen[w][hot] = wrong.Actual
			return nil
		}
		return err
	}
	d.progress = func(start time.Time) func() { return progress(ctx, opts, start, &appends, &conflicts) }
	m := d.run(ctx)
	elapsed := m.elapsed

	res := AppendResult{
		Writers: opts.Writers, Batch: opts.Batch, Hot: opts.Hot, Seconds: round(elapsed, 2),
		Appends: appends.Load(), Conflicts: conflicts.Load(), Errors: d.failures.Load(),
		P50Ms: quantileMs(m.latencies, 0.50), P99Ms: quantileMs(m.latencies, 0.99), MaxMs: quantileMs(m.latencies, 1),
	}
	res.Events = res.Appends * int64(opts.Batch)
	res.AppendsPerSec = round(float64(res.Appends)/elapsed, 0)
	res.EventsPerSec = round(float64(res.Events)/elapsed, 0)
	if m.firstErr != nil {
		return res, fmt.Errorf("bench: %d appends failed, the first with: %w", res.Errors, m.firstErr)
	}
	return res, ctx.Err()
}

// progress prints a line per second to opts.Progress until the returned stop is called.
func progress(ctx context.Context, opts AppendOptions, start time.Time, appends, conflicts *atomic.Int64) (stop func()) {
	return everySecond(ctx, opts.Progress, func(now time.Time) string {
		n := appends.Load()
		if opts.Count > 0 {
			return fmt.Sprintf("bench: %4.0fs: %d of %d appends (%.0f/s), %d conflicts\n",
				now.Sub(start).Seconds(), n, opts.Count, float64(n)/now.Sub(start).Seconds(), conflicts.Load())
		}
		return fmt.Sprintf("bench: %4.0fs of %s: %d appends (%.0f/s), %d conflicts\n",
			now.Sub(start).Seconds(), opts.Duration, n, float64(n)/now.Sub(start).Seconds(), conflicts.Load())
	})
}

// everySecond writes line(now) to w once a second until the returned stop is called or ctx
// ends; with w nil it does nothing.
func everySecond(ctx context.Context, w io.Writer, line func(now time.Time) string) (stop func()) {
	if w == nil {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				_, _ = io.WriteString(w, line(now))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// quantileMs returns the q-quantile of sorted durations in milliseconds (nearest rank).
func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return round(float64(sorted[i])/float64(time.Millisecond), 3)
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}
