package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// OrderDay is what happened to orders in one UTC day, or in the part of it in the range asked
// for: [Start, End).
type OrderDay struct {
	Start, End time.Time
	// Orders created, paid, shipped and cancelled in the day, each counted on the day of the
	// event that did it.
	Created, Paid, Shipped, Cancelled int64
	// Revenue is the sum of the amounts of the orders paid in the day (OrderPaid), also of
	// those cancelled later.
	Revenue domain.Money
	// MedianTimeToShip is the median, over the orders shipped in the day, of the time from the
	// order's creation to its shipment; nil when none shipped.
	MedianTimeToShip *time.Duration
}

// OrderStats is the figures of a range of days: the days, and the totals and median over the
// whole range.
type OrderStats struct {
	Days  []OrderDay
	Total OrderDay // Start and End are the range's
}

const day = 24 * time.Hour

// OrderStats returns the order figures of [from, to) per UTC day, from the order_stats read
// model: every day the range touches, in order, days without orders included; at most
// eventstore.MaxStatsBuckets days.
func (r *Reader) OrderStats(ctx context.Context, from, to time.Time) (OrderStats, error) {
	if err := (eventstore.StatsOptions{From: from, To: to, Interval: day}).Validate(); err != nil {
		var v *eventstore.ValidationError
		if errors.As(err, &v) && v.Field == "interval" { // orderStats has no interval to change
			return OrderStats{}, &eventstore.ValidationError{Field: "to", Reason: fmt.Sprintf("from..to spans %d days; at most %d", eventstore.StatsBuckets(from, to, day), eventstore.MaxStatsBuckets)}
		}
		return OrderStats{}, err
	}
	from, to = eventstore.UpToMicrosecond(from), eventstore.UpToMicrosecond(to)
	days := eventstore.SpanBuckets(from, to, day)
	origin := days.First()
	out := OrderStats{Days: make([]OrderDay, days.Len()), Total: OrderDay{Start: from.UTC(), End: to.UTC()}}
	for i := range out.Days {
		out.Days[i].Start, out.Days[i].End = days.Span(i)
	}
	index := days.Index
	rows, err := r.pool.Query(ctx, pgsql.QueryOrderDays, from, to, origin)
	if err != nil {
		return OrderStats{}, fmt.Errorf("order stats: %w", err)
	}
	var (
		at     time.Time
		kind   string
		n, sum int64
	)
	_, err = pgx.ForEachRow(rows, []any{&at, &kind, &n, &sum}, func() error {
		i, err := index(at)
		if err != nil {
			return err
		}
		for _, d := range []*OrderDay{&out.Days[i], &out.Total} {
			switch kind {
			case "created":
				d.Created += n
			case "paid":
				d.Paid += n
				d.Revenue += domain.Money(sum)
			case "shipped":
				d.Shipped += n
			case "cancelled":
				d.Cancelled += n
			}
		}
		return nil
	})
	if err != nil {
		return OrderStats{}, fmt.Errorf("order stats: %w", err)
	}
	rows, err = r.pool.Query(ctx, pgsql.QueryOrderMedianTimeToShip, from, to, origin)
	if err != nil {
		return OrderStats{}, fmt.Errorf("order stats: median: %w", err)
	}
	var (
		dayAt  *time.Time
		median *float64
	)
	_, err = pgx.ForEachRow(rows, []any{&dayAt, &median}, func() error {
		if median == nil {
			return nil // nothing shipped in the range
		}
		m := time.Duration(*median+0.5) * time.Microsecond
		if dayAt == nil {
			out.Total.MedianTimeToShip = &m
			return nil
		}
		i, err := index(*dayAt)
		if err != nil {
			return err
		}
		out.Days[i].MedianTimeToShip = &m
		return nil
	})
	if err != nil {
		return OrderStats{}, fmt.Errorf("order stats: median: %w", err)
	}
	return out, nil
}
