package graph

import (
	"time"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/query"
)

// orderStatsModels are the read models orderStats reads, for consistentWith to wait for.
func orderStatsModels() []string { return []string{projection.OrderStats{}.Name()} }

// statsInterval is the length of a StatsInterval's buckets.
func statsInterval(i model.StatsInterval) time.Duration {
	switch i {
	case model.StatsIntervalMinute:
		return time.Minute
	case model.StatsIntervalDay:
		return 24 * time.Hour
	case model.StatsIntervalWeek:
		return 7 * 24 * time.Hour
	default:
		return time.Hour
	}
}

// statsBuckets is the count of buckets of interval in [from, to), bounded by
// eventstore.MaxStatsBuckets, for the complexity of the stats fields: the resolver refuses a
// range of more buckets with BAD_USER_INPUT, which says what is wrong.
func statsBuckets(from, to time.Time, interval time.Duration) int {
	n := eventstore.StatsBuckets(from, to, interval)
	return int(max(1, min(n, eventstore.MaxStatsBuckets)))
}

func toEventStats(buckets []eventstore.StatsBucket) *model.EventStats {
	out := &model.EventStats{Buckets: make([]*model.EventStatsBucket, len(buckets))}
	for i, b := range buckets {
		mb := &model.EventStatsBucket{Start: b.Start, End: b.End, Total: int(b.Total), Counts: make([]*model.EventTypeCount, len(b.Counts))}
		for j, c := range b.Counts {
			mb.Counts[j] = &model.EventTypeCount{Type: c.Type, Count: int(c.Count)}
		}
		out.Total += mb.Total
		out.Buckets[i] = mb
	}
	return out
}

func toOrderStatsDay(d query.OrderDay) *model.OrderStatsDay {
	out := &model.OrderStatsDay{
		Start: d.Start, End: d.End, Created: int(d.Created), Paid: int(d.Paid), Shipped: int(d.Shipped),
		Cancelled: int(d.Cancelled), Revenue: d.Revenue,
	}
	if d.MedianTimeToShip != nil {
		s := d.MedianTimeToShip.Seconds()
		out.MedianTimeToShip = &s
	}
	return out
}

func toOrderStats(s query.OrderStats) *model.OrderStats {
	out := &model.OrderStats{Total: toOrderStatsDay(s.Total), Days: make([]*model.OrderStatsDay, len(s.Days))}
	for i, d := range s.Days {
		out.Days[i] = toOrderStatsDay(d)
	}
	return out
}
