package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// BenchmarkAppend measures single-event appends to fresh streams from parallel writers. The
// figures that matter are ratios against pg-baseline.sh: see docs/benchmarks.md and
// `strata bench append`.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			pool := dbtestPool(b)
			s := eventstore.New(pool, eventstore.Options{})
			events := make([]eventstore.EventData, batch)
			for i := range events {
				events[i] = eventstore.EventData{Type: "OrderItemAdded", Data: json.RawMessage(`{"orderId":"o1","sku":"A","qty":2,"price":9.99}`)}
			}
			var n atomic.Int64
			b.SetParallelism(4) // with GOMAXPROCS 2: 8 writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(context.Background(), fmt.Sprintf("order-b%d", n.Add(1)), eventstore.NoStream(), events); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkTagsAndConditions compares, with 8 writers and group commit on (the server's
// default), single-event appends to fresh streams: without tags, with two tags, and with one
// tag under a condition on that tag (disjoint across writers, so none fails). It reports each
// append's latency at p50 and p99; docs/benchmarks.md has the ratios and the command.
func BenchmarkTagsAndConditions(b *testing.B) {
	data := json.RawMessage(`{"orderId":"o1","sku":"A","qty":2,"price":9.99}`)
	for _, kind := range []string{"untagged", "tagged", "conditional"} {
		b.Run(kind, func(b *testing.B) {
			pool := dbtestPool(b)
			s := eventstore.New(pool, eventstore.Options{GroupCommit: os.Getenv("STRATA_BENCH_GROUP") != "off"})
			var n atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(4) // with GOMAXPROCS 2: 8 writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					i := n.Add(1)
					stream := fmt.Sprintf("order-b%d", i)
					e := eventstore.EventData{Type: "OrderItemAdded", Data: data}
					start := time.Now()
					var err error
					switch kind {
					case "untagged":
						_, err = s.Append(context.Background(), stream, eventstore.NoStream(), []eventstore.EventData{e})
					case "tagged":
						e.Tags = []string{fmt.Sprintf("order:%d", i), fmt.Sprintf("customer:%d", i%100)}
						_, err = s.Append(context.Background(), stream, eventstore.NoStream(), []eventstore.EventData{e})
					case "conditional":
						tag := fmt.Sprintf("order:%d", i)
						e.Tags = []string{tag}
						_, err = s.AppendIf(context.Background(), stream, eventstore.NoStream(), []eventstore.EventData{e},
							eventstore.Condition{FailIfEventsMatch: eventstore.Query{Items: []eventstore.QueryItem{{Types: []string{"OrderItemAdded"}, Tags: []string{tag}}}}})
					}
					mine = append(mine, time.Since(start))
					if err != nil {
						b.Error(err)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}
