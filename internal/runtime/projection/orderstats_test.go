package projection_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/query"
)

// orderFacts is what the test did to one order, and when it says each event happened.
type orderFacts struct {
	created, paid, shipped, cancelled time.Time // zero when it did not happen
	amount                            domain.Money
}

// expectOrderStats computes the figures of [from, to) from the facts alone, as a person with
// the list of orders would: the days are the UTC calendar days (time.Truncate on whole days is
// UTC midnight), the median is the middle duration, or the mean of the two middle ones.
func expectOrderStats(facts []orderFacts, from, to time.Time) query.OrderStats {
	const day = 24 * time.Hour
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(from) && t.Before(to) }
	var out query.OrderStats
	out.Total = query.OrderDay{Start: from.UTC(), End: to.UTC()}
	for start := from.Truncate(day); start.Before(to); start = start.Add(day) {
		d := query.OrderDay{Start: start, End: start.Add(day)}
		if d.Start.Before(from) {
			d.Start = from.UTC()
		}
		if d.End.After(to) {
			d.End = to.UTC()
		}
		out.Days = append(out.Days, d)
	}
	median := func(ds []time.Duration) *time.Duration {
		if len(ds) == 0 {
			return nil
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		m := ds[len(ds)/2]
		if len(ds)%2 == 0 {
			m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
		}
		return &m
	}
	perDay := make([][]time.Duration, len(out.Days))
	var all []time.Duration
	for _, f := range facts {
		for _, d := range []*query.OrderDay{nil, &out.Total} {
			add := func(t time.Time, count func(*query.OrderDay)) {
				if !in(t) {
					return
				}
				target := d
				if target == nil {
					target = &out.Days[int(t.Sub(from.Truncate(day))/day)]
				}
				count(target)
			}
			add(f.created, func(d *query.OrderDay) { d.Created++ })
			add(f.paid, func(d *query.OrderDay) { d.Paid++; d.Revenue += f.amount })
			add(f.shipped, func(d *query.OrderDay) { d.Shipped++ })
			add(f.cancelled, func(d *query.OrderDay) { d.Cancelled++ })
		}
		if in(f.shipped) {
			i := int(f.shipped.Sub(from.Truncate(day)) / day)
			perDay[i] = append(perDay[i], f.shipped.Sub(f.created))
			all = append(all, f.shipped.Sub(f.created))
		}
	}
	for i := range out.Days {
		out.Days[i].MedianTimeToShip = median(perDay[i])
	}
	out.Total.MedianTimeToShip = median(all)
	return out
}

// backdate sets the recorded_at of an event: the test arranges a history of several days,
// which appends (stamped now() by the database) cannot make.
func backdate(ctx context.Context, t *testing.T, f *fixture, orderID string, version int64, at time.Time) {
	t.Helper()
	tag, err := f.pool.Exec(ctx, `UPDATE events SET recorded_at = $3 WHERE stream_id = $1 AND version = $2`, order.StreamID(orderID), version, at)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("backdate %s@%d: %v (%d rows)", orderID, version, err, tag.RowsAffected())
	}
}

func TestOrderStatsMatchTheOrdersMade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, projection.Options{})
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	u, err := f.cmd.RegisterUser(ctx, "Stats Customer", "stats@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var facts []orderFacts
	var last eventstore.Position
	for i := range 40 {
		o, err := f.cmd.CreateOrder(ctx, u.User.ID, []order.Item{{SKU: "S", Quantity: int64(i + 1), UnitPrice: 1999}})
		if err != nil {
			t.Fatal(err)
		}
		// Days 0..5; some orders at the last second of a day, so that the next event falls on
		// the next day.
		created := monday.Add(time.Duration(i%6)*24*time.Hour + time.Duration(i*53%1440)*time.Minute)
		if i%7 == 0 {
			created = monday.Add(time.Duration(i%6+1)*24*time.Hour - time.Second)
		}
		backdate(ctx, t, f, o.Order.ID, 1, created)
		fact := orderFacts{created: created}
		last = o.Position
		if i%4 != 0 { // paid
			r, err := f.cmd.PayOrder(ctx, o.Order.ID, o.Order.Total, nil)
			if err != nil {
				t.Fatal(err)
			}
			fact.paid, fact.amount, last = created.Add(time.Duration(i*7+1)*time.Minute), o.Order.Total, r.Position
			backdate(ctx, t, f, o.Order.ID, 2, fact.paid)
		}
		switch i % 4 {
		case 2: // shipped, hours to days later
			r, err := f.cmd.ShipOrder(ctx, o.Order.ID, "DHL", fmt.Sprintf("T%d", i), nil)
			if err != nil {
				t.Fatal(err)
			}
			fact.shipped, last = fact.paid.Add(time.Duration(i*97%3000)*time.Minute+time.Duration(i)*time.Second), r.Position
			backdate(ctx, t, f, o.Order.ID, 3, fact.shipped)
		case 0, 3: // cancelled, pending or paid
			r, err := f.cmd.CancelOrder(ctx, o.Order.ID, "changed my mind", nil)
			if err != nil {
				t.Fatal(err)
			}
			v := int64(2)
			at := created.Add(2 * time.Hour)
			if i%4 == 3 {
				v, at = 3, fact.paid.Add(3*time.Hour)
			}
			fact.cancelled, last = at, r.Position
			backdate(ctx, t, f, o.Order.ID, v, at)
		}
		facts = append(facts, fact)
	}
	f.run(t)
	if err := f.runner.WaitFor(ctx, "order_stats", last, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	reader := query.New(f.pool)
	ranges := []struct {
		name     string
		from, to time.Time
	}{
		{"every day", monday.Add(-24 * time.Hour), monday.Add(9 * 24 * time.Hour)},
		{"whole days", monday, monday.Add(3 * 24 * time.Hour)},
		{"cut days", monday.Add(13*time.Hour + 30*time.Minute), monday.Add(4*24*time.Hour + 5*time.Hour)},
		{"one second", monday.Add(24*time.Hour - time.Second), monday.Add(24 * time.Hour)},
		{"no orders", monday.Add(-10 * 24 * time.Hour), monday.Add(-8 * 24 * time.Hour)},
	}
	check := func(t *testing.T) {
		for _, r := range ranges {
			got, err := reader.OrderStats(ctx, r.from, r.to)
			if err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			if want := expectOrderStats(facts, r.from, r.to); !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got %s\nwant %s", r.name, showStats(got), showStats(want))
			}
		}
	}
	t.Run("live", check)
	if got := expectOrderStats(facts, ranges[0].from, ranges[0].to).Total; got.Created != 40 || got.Shipped != 10 || got.MedianTimeToShip == nil {
		t.Fatalf("the test's own figures are off: %s", showDay(got))
	}

	before := dumpOrderStats(t, f)
	if err := f.runner.Rebuild(ctx, "order_stats", nil); err != nil {
		t.Fatal(err)
	}
	if after := dumpOrderStats(t, f); !reflect.DeepEqual(after, before) {
		t.Errorf("the rebuilt table differs:\n got %v\nwant %v", after, before)
	}
	t.Run("rebuilt", check)

	t.Run("bad ranges", func(t *testing.T) {
		for _, r := range []struct{ from, to time.Time }{
			{monday, monday},
			{monday, monday.Add(-time.Hour)},
			{monday, monday.Add(1001 * 24 * time.Hour)},
		} {
			if _, err := reader.OrderStats(ctx, r.from, r.to); !isValidation(err) || (r.to.After(r.from) && !strings.Contains(err.Error(), "spans 1001 days; at most 1000")) {
				t.Errorf("%s..%s: err = %v, want a validation error", r.from, r.to, err)
			}
		}
	})
}

func isValidation(err error) bool {
	var v *eventstore.ValidationError
	return errors.As(err, &v)
}

func dumpOrderStats(t *testing.T, f *fixture) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT concat_ws(' ', id, created_at, paid_at, amount_paid, shipped_at, cancelled_at, version, position, applied) FROM order_stats ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func showDay(d query.OrderDay) string {
	m := "-"
	if d.MedianTimeToShip != nil {
		m = d.MedianTimeToShip.String()
	}
	return fmt.Sprintf("{%s..%s c%d p%d s%d x%d %s median %s}", d.Start.Format(time.RFC3339), d.End.Format(time.RFC3339), d.Created, d.Paid, d.Shipped, d.Cancelled, d.Revenue, m)
}

func showStats(s query.OrderStats) string {
	out := "total " + showDay(s.Total) + " days"
	for _, d := range s.Days {
		out += " " + showDay(d)
	}
	return out
}
