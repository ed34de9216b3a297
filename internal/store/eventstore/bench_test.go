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
// tag under a condition on that tag (disjoint across writers, so none fails). The kinds take
// turns in slices of 50 ms within one run, so that the machine's drift, which on a shared
// machine is larger than the differences measured, reaches all three alike. It reports each
// kind's latency at p50 and p99 and the p50 ratios against untagged appends;
// docs/benchmarks.md has the command and the figures.
func BenchmarkTagsAndConditions(b *testing.B) {
	data := json.RawMessage(`{"orderId":"o1","sku":"A","qty":2,"price":9.99}`)
	kinds := []string{"untagged", "tagged", "conditional"}
	pool := dbtestPool(b)
	s := eventstore.New(pool, eventstore.Options{GroupCommit: os.Getenv("STRATA_BENCH_GROUP") != "off"})
	var n, turn atomic.Int64
	stop := make(chan struct{})
	switched := make(chan struct{})
	go func() {
		defer close(switched)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				turn.Add(1)
			}
		}
	}()
	var mu sync.Mutex
	lat := make([][]time.Duration, len(kinds))
	b.SetParallelism(4) // with GOMAXPROCS 2: 8 writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([][]time.Duration, len(kinds))
		for pb.Next() {
			i := n.Add(1)
			k := int(turn.Load() % int64(len(kinds)))
			stream := fmt.Sprintf("order-b%d", i)
			e := eventstore.EventData{Type: "OrderItemAdded", Data: data}
			start := time.Now()
			var err error
			switch kinds[k] {
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
			mine[k] = append(mine[k], time.Since(start))
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		for k := range kinds {
			lat[k] = append(lat[k], mine[k]...)
		}
		mu.Unlock()
	})
	b.StopTimer()
	close(stop)
	<-switched
	p50 := make([]float64, len(kinds))
	for k, kind := range kinds {
		l := lat[k]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		p50[k] = float64(l[len(l)/2].Microseconds())
		b.ReportMetric(p50[k], kind+"-p50-µs")
		b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), kind+"-p99-µs")
	}
	if p50[0] > 0 {
		b.ReportMetric(p50[1]/p50[0], "tagged/untagged")
		b.ReportMetric(p50[2]/p50[0], "conditional/untagged")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	if batches, appends := s.GroupStats(); batches > 0 {
		b.ReportMetric(float64(appends)/float64(batches), "appends/batch")
	}
}
