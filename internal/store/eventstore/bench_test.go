package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

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
