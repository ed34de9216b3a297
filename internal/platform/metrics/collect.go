package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// What is read at scrape time rather than counted as it happens: the pool keeps its own
// statistics, and a projection's lag is a count over the events table that only makes sense
// asked for now.

// WatchPool adds the statistics of pool (pgxpool.Stat) to the metrics.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	m.reg.MustRegister(poolCollector{pool})
}

// Statuser reports the projections' states: projection.Runner.
type Statuser interface {
	Status(ctx context.Context) ([]projection.Info, error)
}

// statusTimeout bounds the queries one scrape makes for the projections' states; a scrape has
// no context of its own, and Prometheus gives up on a scrape after 10s by default.
const statusTimeout = 5 * time.Second

// WatchProjections adds each projection's position, lag and skipped events to the metrics,
// read from projections at every scrape.
func (m *Metrics) WatchProjections(projections Statuser) {
	m.reg.MustRegister(projectionCollector{projections})
}

// WatchConnections adds the number of open WebSocket connections, conns.Len() at each scrape
// (wsconn.Registry), to the metrics.
func (m *Metrics) WatchConnections(conns interface{ Len() int }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_websocket_connections_active",
		Help: "WebSocket connections open now.",
	}, func() float64 { return float64(conns.Len()) }))
}

// WatchGroupCommit adds the store's group commits and the appends they carried
// (eventstore.Store.GroupStats) to the metrics: their ratio is how many appends share a
// transaction on average.
func (m *Metrics) WatchGroupCommit(stats func() (batches, appends int64)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strata_group_commits_total",
			Help: "Transactions written by group commit (a batch of one counts).",
		}, func() float64 { b, _ := stats(); return float64(b) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strata_group_commit_appends_total",
			Help: "Appends written by group commit; divided by strata_group_commits_total, the appends per transaction.",
		}, func() float64 { _, a := stats(); return float64(a) }),
	)
}

var (
	projectionPosition = prometheus.NewDesc("strata_projection_position", //nolint:gochecknoglobals // a constant description
		"The sequence number of the last event the projection applied (the second half of its checkpoint; 0 before the first): it grows as the projection moves on.",
		[]string{"projection"}, nil)
	projectionLag = prometheus.NewDesc("strata_projection_lag_events", //nolint:gochecknoglobals // a constant description
		fmt.Sprintf("Events of the projection's category that readers can see and it has not applied yet, counted up to %d.", projection.LagCap),
		[]string{"projection"}, nil)
	projectionSkipped = prometheus.NewDesc("strata_projection_skipped_events", //nolint:gochecknoglobals // a constant description
		"Events the projection could not use and skipped, since it was last built.",
		[]string{"projection"}, nil)
)

type projectionCollector struct{ s Statuser }

func (c projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- projectionPosition
	ch <- projectionLag
	ch <- projectionSkipped
}

func (c projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	infos, err := c.s.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(projectionLag, fmt.Errorf("projection status: %w", err))
		return
	}
	for _, info := range infos {
		var seq int64
		if at, err := eventstore.ParsePosition(info.Position); err == nil {
			seq = at.Seq()
		}
		ch <- prometheus.MustNewConstMetric(projectionPosition, prometheus.GaugeValue, float64(seq), info.Name)
		ch <- prometheus.MustNewConstMetric(projectionLag, prometheus.GaugeValue, float64(info.Lag), info.Name)
		ch <- prometheus.MustNewConstMetric(projectionSkipped, prometheus.GaugeValue, float64(info.Skipped), info.Name)
	}
}

// poolStat is one number of pgxpool.Stat as a metric.
type poolStat struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

func newPoolStat(name, help string, kind prometheus.ValueType, value func(*pgxpool.Stat) float64) poolStat {
	return poolStat{desc: prometheus.NewDesc("strata_pgxpool_"+name, help, nil, nil), kind: kind, value: value}
}

var poolStats = []poolStat{ //nolint:gochecknoglobals // a constant table
	newPoolStat("acquired_connections", "Connections in use now.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
	newPoolStat("idle_connections", "Idle connections now.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
	newPoolStat("constructing_connections", "Connections being opened now.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) }),
	newPoolStat("total_connections", "Connections in the pool now: acquired, idle and being opened.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
	newPoolStat("max_connections", "The most connections the pool may hold.", prometheus.GaugeValue,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
	newPoolStat("acquires_total", "Connections acquired from the pool.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
	newPoolStat("acquire_duration_seconds_total", "Time spent acquiring connections, summed.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
	newPoolStat("empty_acquires_total", "Acquires that had to wait for a connection: none was idle.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
	newPoolStat("empty_acquire_wait_seconds_total", "Time acquires that found no idle connection spent waiting, summed.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
	newPoolStat("canceled_acquires_total", "Acquires given up because their context ended.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
	newPoolStat("new_connections_total", "Connections opened.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
	newPoolStat("max_lifetime_destroyed_total", "Connections closed for reaching their maximum lifetime.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) }),
	newPoolStat("max_idle_destroyed_total", "Connections closed for staying idle too long.", prometheus.CounterValue,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) }),
}

type poolCollector struct{ pool *pgxpool.Pool }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range poolStats {
		ch <- s.desc
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	stat := c.pool.Stat() // one snapshot, so the numbers agree with each other
	for _, s := range poolStats {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(stat))
	}
}
