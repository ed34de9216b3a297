package app

import (
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// The served API answers orderStats from the order_stats projection, waiting for it with
// consistentWith, and eventStats from the log; both agree with the orders made and their
// events' times.
func TestStatisticsThroughTheServer(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	var u userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &u)
	var o, paid, shipped, other orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": u.User.ID, "items": items("A", 3, "6.66")}), "createOrder", &o)
	ok(t, gql(t, a, payM, map[string]any{"id": o.Order.ID, "a": "19.98"}), "payOrder", &paid)
	ok(t, gql(t, a, shipM, map[string]any{"id": o.Order.ID}), "shipOrder", &shipped)
	ok(t, gql(t, a, createM, map[string]any{"c": u.User.ID, "items": items("B", 1, "1.00")}), "createOrder", &other)
	ok(t, gql(t, a, cancelM, map[string]any{"id": other.Order.ID, "r": "no"}), "cancelOrder", &other)

	var stream struct {
		Events struct {
			Edges []struct {
				Node struct {
					Type       string
					RecordedAt time.Time
				}
			}
		}
	}
	ok(t, gql(t, a, `query($id: String!) { stream(id: $id) { events { edges { node { type recordedAt } } } } }`, map[string]any{"id": "order-" + o.Order.ID}), "stream", &stream)
	events := stream.Events.Edges
	if len(events) != 3 {
		t.Fatalf("the order has %d events", len(events))
	}
	wantMedian := events[2].Node.RecordedAt.Sub(events[0].Node.RecordedAt).Seconds()

	// Microseconds, the precision the database keeps and the server rounds bounds to.
	now := time.Now().UTC().Truncate(time.Microsecond)
	from, to := now.Add(-24*time.Hour), now.Add(24*time.Hour)
	type day struct {
		Start, End                        time.Time
		Created, Paid, Shipped, Cancelled int
		Revenue                           string
		MedianTimeToShip                  *float64
	}
	var stats struct {
		Total day
		Days  []day
	}
	ok(t, gql(t, a, `query($from: Time!, $to: Time!, $p: String) { orderStats(from: $from, to: $to, consistentWith: $p) {
  total { start end created paid shipped cancelled revenue medianTimeToShip }
  days { start end created paid shipped cancelled revenue medianTimeToShip } } }`,
		map[string]any{"from": from, "to": to, "p": other.Position}), "orderStats", &stats)
	tot := stats.Total
	if tot.Created != 2 || tot.Paid != 1 || tot.Shipped != 1 || tot.Cancelled != 1 || tot.Revenue != "19.98" ||
		tot.MedianTimeToShip == nil || abs(*tot.MedianTimeToShip-wantMedian) > 1e-6 || !tot.Start.Equal(from) || !tot.End.Equal(to) {
		t.Errorf("orderStats total = %+v; want 2 created, 1 paid, 1 shipped, 1 cancelled, 19.98, median %v s", tot, wantMedian)
	}
	if n := len(stats.Days); n != 3 || !stats.Days[0].Start.Equal(from) || !stats.Days[2].End.Equal(to) {
		t.Errorf("orderStats has %d days, %+v; want 3 from %s to %s", n, stats.Days, from, to)
	}

	var es struct {
		Total   int
		Buckets []struct{ Total int }
	}
	ok(t, gql(t, a, `query($from: Time!, $to: Time!) { eventStats(from: $from, to: $to, interval: DAY, category: "order", types: ["OrderCreated", "OrderShipped"]) { total buckets { total } } }`,
		map[string]any{"from": from, "to": to}), "eventStats", &es)
	if es.Total != 3 || len(es.Buckets) != 3 {
		t.Errorf("eventStats = %+v; want 3 events (two created, one shipped) in 3 buckets", es)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
