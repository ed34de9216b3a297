package eventstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxStatsBuckets bounds the buckets one Stats call returns.
const MaxStatsBuckets = 1000

// StatsOptions selects the events Stats counts and how it groups them.
type StatsOptions struct {
	// From and To bound recorded_at: From inclusive, To exclusive; From must be before To.
	From, To time.Time
	// Interval is the length of a bucket: a whole number of minutes, at most a week. Buckets are
	// aligned in UTC: on whole minutes, hours and days, and weeks start on Monday.
	Interval time.Duration
	// Category and Types narrow the events counted as ReadAllOptions' do.
	Category string
	Types    []string
}

// TypeCount is the count of one event type in a bucket.
type TypeCount struct {
	Type  string
	Count int64
}

// StatsBucket counts the events recorded in [Start, End). Start is the interval's boundary, or
// From for the first bucket; End the next boundary, or To for the last.
type StatsBucket struct {
	Start, End time.Time
	Total      int64
	Counts     []TypeCount // by type name; types with no event in the bucket are absent
}

// statsOrigin is where buckets are aligned: a Monday at midnight UTC, so that week buckets
// run Monday to Monday and day, hour and minute buckets start on the UTC clock's boundaries.
func statsOrigin() time.Time { return time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC) }

// statsSQL counts events per bucket and type. It reads only the columns of
// events_recorded_at_idx (migrations/00008_statistics.sql), so it runs as an index-only scan.
// Like ReadAll, it sees only events of transactions older than the snapshot's xmin: a count
// never includes an event allEvents cannot show yet.
const statsSQL = `SELECT date_bin($3::interval, e.recorded_at, $4::timestamptz) AS bucket, e.type, count(*)
FROM events e
WHERE e.recorded_at >= $1 AND e.recorded_at < $2
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND ($5 = '' OR e.category = $5)
  AND (cardinality($6::text[]) = 0 OR e.type = ANY($6::text[]))
GROUP BY 1, 2`

// bucketStart is the boundary of the bucket t falls in.
func BucketStart(t time.Time, interval time.Duration) time.Time {
	d := t.Sub(statsOrigin())
	n := d / interval
	if d%interval < 0 {
		n--
	}
	return statsOrigin().Add(n * interval)
}

// StatsBuckets is the count of buckets Stats returns for [from, to): the boundaries they span,
// empty buckets included. It is for checking a request before running it.
func StatsBuckets(from, to time.Time, interval time.Duration) int64 {
	if interval <= 0 || !from.Before(to) {
		return 0
	}
	first := BucketStart(from, interval)
	last := BucketStart(to.Add(-time.Nanosecond), interval)
	return int64(last.Sub(first)/interval) + 1
}

// Validate checks the options as Stats does: a range of at most MaxStatsBuckets intervals.
func (o StatsOptions) Validate() error {
	switch {
	case o.From.IsZero() || o.To.IsZero():
		return &ValidationError{Field: "from", Reason: "from and to are both required"}
	case o.From.Year() < 1900 || o.To.Year() > 2200:
		return &ValidationError{Field: "from", Reason: "from and to must lie between the years 1900 and 2200"}
	case !o.From.Before(o.To):
		return &ValidationError{Field: "to", Reason: fmt.Sprintf("%s is not after from (%s)", o.To.UTC().Format(time.RFC3339Nano), o.From.UTC().Format(time.RFC3339Nano))}
	case o.Interval < time.Minute || o.Interval > 7*24*time.Hour || o.Interval%time.Minute != 0:
		return &ValidationError{Field: "interval", Reason: fmt.Sprintf("%s is not a whole number of minutes up to a week", o.Interval)}
	}
	if n := StatsBuckets(o.From, o.To, o.Interval); n > MaxStatsBuckets {
		return &ValidationError{Field: "interval", Reason: fmt.Sprintf("from..to spans %d %s; at most %d: narrow the range or use a longer interval", n, intervalName(o.Interval), MaxStatsBuckets)}
	}
	if o.Category != "" {
		if err := validateName("category", o.Category, MaxStreamIDLen); err != nil {
			return err
		}
	}
	for i, t := range o.Types {
		if err := validateName(fmt.Sprintf("types[%d]", i), t, MaxEventTypeLen); err != nil {
			return err
		}
	}
	return nil
}

// Stats counts the events recorded in [From, To) per bucket of Interval and per type, in one
// statement. Every bucket the range spans is returned, in time order, empty ones included, so
// a chart has no holes. Events are counted as ReadAll shows them: up to the horizon, and only
// those still stored (not scavenged, not in an archived partition).
func (s *Store) Stats(ctx context.Context, o StatsOptions) ([]StatsBucket, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	types := o.Types
	if types == nil {
		types = []string{}
	}
	rows, err := s.pool.Query(ctx, statsSQL, o.From, o.To, o.Interval, statsOrigin(), o.Category, types)
	if err != nil {
		return nil, fmt.Errorf("event stats: %w", err)
	}
	type row struct {
		bucket time.Time
		tc     TypeCount
	}
	counted, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.bucket, &x.tc.Type, &x.tc.Count)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("event stats: %w", err)
	}
	first := BucketStart(o.From, o.Interval)
	buckets := make([]StatsBucket, StatsBuckets(o.From, o.To, o.Interval))
	for i := range buckets {
		start := first.Add(time.Duration(i) * o.Interval)
		buckets[i] = StatsBucket{Start: maxTime(start, o.From).UTC(), End: minTime(start.Add(o.Interval), o.To).UTC()}
	}
	for _, x := range counted {
		i := int(x.bucket.Sub(first) / o.Interval)
		if i < 0 || i >= len(buckets) {
			return nil, fmt.Errorf("event stats: bucket %s is outside %s..%s", x.bucket, o.From, o.To)
		}
		buckets[i].Total += x.tc.Count
		buckets[i].Counts = append(buckets[i].Counts, x.tc)
	}
	for i := range buckets {
		sort.Slice(buckets[i].Counts, func(a, b int) bool { return buckets[i].Counts[a].Type < buckets[i].Counts[b].Type })
	}
	return buckets, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// intervalName names the buckets of interval in a message: "days", or "buckets of 2h0m0s".
func intervalName(interval time.Duration) string {
	switch interval {
	case time.Minute:
		return "minutes"
	case time.Hour:
		return "hours"
	case 24 * time.Hour:
		return "days"
	case 7 * 24 * time.Hour:
		return "weeks"
	}
	return "buckets of " + interval.String()
}
