package eventstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/pgsql"
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

// UpToMicrosecond rounds t up to a whole microsecond, the precision PostgreSQL keeps a
// timestamptz in: a bound of a range of recorded_at compares the same rounded up as it does
// exactly (t is sent to the server truncated to the microsecond, which would move a bound with
// nanoseconds past the events at its microsecond).
func UpToMicrosecond(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// BucketStart is the start of the bucket of length interval that t falls in, aligned in UTC
// as Stats aligns them.
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

// Buckets are the buckets of one interval that a range [from, to) spans, in time order: bucket i
// begins at BucketStart(from) + i intervals, and is cut to the range at either end.
type Buckets struct {
	first    time.Time
	interval time.Duration
	from, to time.Time
	n        int
}

// SpanBuckets returns the buckets of interval that [from, to) spans (StatsBuckets of them).
func SpanBuckets(from, to time.Time, interval time.Duration) Buckets {
	return Buckets{first: BucketStart(from, interval), interval: interval, from: from, to: to, n: int(StatsBuckets(from, to, interval))}
}

// Len is how many buckets there are.
func (b Buckets) Len() int { return b.n }

// First is where the first bucket begins, before it is cut to the range.
func (b Buckets) First() time.Time { return b.first }

// Span returns bucket i's bounds, cut to the range, in UTC.
func (b Buckets) Span(i int) (start, end time.Time) {
	s := b.first.Add(time.Duration(i) * b.interval)
	e := s.Add(b.interval)
	if s.Before(b.from) {
		s = b.from
	}
	if e.After(b.to) {
		e = b.to
	}
	return s.UTC(), e.UTC()
}

// Index returns the index of the bucket that begins (uncut) at t, or an error when no bucket of
// the range does.
func (b Buckets) Index(t time.Time) (int, error) {
	i := int(t.Sub(b.first) / b.interval)
	if i < 0 || i >= b.n {
		return 0, fmt.Errorf("bucket %s is outside %s..%s", t, b.from, b.to)
	}
	return i, nil
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
	o.From, o.To = UpToMicrosecond(o.From), UpToMicrosecond(o.To)
	types := o.Types
	if types == nil {
		types = []string{}
	}
	rows, err := s.pool.Query(ctx, pgsql.EventstoreStats, o.From, o.To, o.Interval, statsOrigin(), o.Category, types)
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
	spans := SpanBuckets(o.From, o.To, o.Interval)
	buckets := make([]StatsBucket, spans.Len())
	for i := range buckets {
		buckets[i].Start, buckets[i].End = spans.Span(i)
	}
	for _, x := range counted {
		i, err := spans.Index(x.bucket)
		if err != nil {
			return nil, fmt.Errorf("event stats: %w", err)
		}
		buckets[i].Total += x.tc.Count
		buckets[i].Counts = append(buckets[i].Counts, x.tc)
	}
	for i := range buckets {
		sort.Slice(buckets[i].Counts, func(a, b int) bool { return buckets[i].Counts[a].Type < buckets[i].Counts[b].Type })
	}
	return buckets, nil
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
