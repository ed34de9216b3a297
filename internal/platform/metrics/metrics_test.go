package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/platform/metrics"
	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// serve serves m's handler and returns its URL.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAppendsCountByOutcome(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	conflict := &eventstore.WrongExpectedVersionError{StreamID: "s", Expected: 0, Actual: 3}
	for _, c := range []struct {
		events int
		err    error
	}{
		{3, nil},
		{0, nil}, // a repeated append: ok, nothing written
		{0, conflict},
		{0, fmt.Errorf("in a command: %w", conflict)},
		{0, &eventstore.ValidationError{Field: "type", Reason: "must not be empty"}},
		{0, &eventstore.DuplicateEventIDError{EventID: "x"}},
		{0, errors.New("connection reset")},
		{0, context.Canceled},
	} {
		m.Appended(c.events, 2*time.Millisecond, c.err)
	}
	metricstest.Scrape(t, serve(t, m)).Want(t, map[string]float64{
		`strata_appends_total{outcome="ok"}`:                      2,
		`strata_appends_total{outcome="conflict"}`:                2,
		`strata_appends_total{outcome="invalid"}`:                 2,
		`strata_appends_total{outcome="error"}`:                   2,
		`strata_events_appended_total`:                            3,
		`strata_append_duration_seconds_count`:                    8,
		`strata_append_duration_seconds_bucket{le="0.002"}`:       8,
		`strata_append_duration_seconds_bucket{le="0.001"}`:       0,
		`strata_append_duration_seconds_sum`:                      0.016,
		`strata_subscriptions_active`:                             0,
		`strata_slow_consumers_dropped_total`:                     0,
		`strata_subscriptions_behind_total`:                       0,
		`strata_events_read_total`:                                0,
		`promhttp_metric_handler_errors_total{cause="gathering"}`: 0,
		`promhttp_metric_handler_errors_total{cause="encoding"}`:  0,
	})
}

func TestEveryOutcomeShowsFromTheStart(t *testing.T) {
	t.Parallel()
	s := metricstest.Scrape(t, serve(t, metrics.New(slog.New(slog.DiscardHandler))))
	s.Want(t, map[string]float64{
		`strata_appends_total{outcome="ok"}`:       0,
		`strata_appends_total{outcome="conflict"}`: 0,
		`strata_appends_total{outcome="invalid"}`:  0,
		`strata_appends_total{outcome="error"}`:    0,
	})
	// The Go runtime's and the process's metrics come along.
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := s[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}

func TestSubscriptionsAndConsumers(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	for range 3 {
		m.SubscriptionStarted()
	}
	m.SubscriptionEnded()
	m.SubscriberBehind()
	m.SubscriberBehind()
	m.SlowConsumerDropped()
	m.EventsRead(7)
	m.EventsRead(0)
	m.WatchConnections(fixedLen(4))
	metricstest.Scrape(t, serve(t, m)).Want(t, map[string]float64{
		`strata_subscriptions_active`:         2,
		`strata_subscriptions_behind_total`:   2,
		`strata_slow_consumers_dropped_total`: 1,
		`strata_events_read_total`:            7,
		`strata_websocket_connections_active`: 4,
	})
}

type fixedLen int

func (n fixedLen) Len() int { return int(n) }

func TestOperationsByNameTypeAndOutcome(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	m.Operation("GetOrder", "query", "ok", 3*time.Millisecond)
	m.Operation("GetOrder", "query", "ok", 3*time.Millisecond)
	m.Operation("PayOrder", "mutation", "WRONG_EXPECTED_VERSION", 5*time.Millisecond)
	m.Operation("", "query", "ok", time.Millisecond)
	m.Operation("Watch", "subscription", "ok", time.Hour)
	m.Operation("", "", "GRAPHQL_PARSE_FAILED", time.Millisecond)
	m.Operation("x", "query", "not a code!", time.Millisecond)
	m.Operation("bad name", "query", "ok", time.Millisecond)
	m.Operation(strings.Repeat("n", 65), "query", "ok", time.Millisecond)
	metricstest.Scrape(t, serve(t, m)).Want(t, map[string]float64{
		`strata_graphql_operations_total{operation="GetOrder",outcome="ok",type="query"}`:                        2,
		`strata_graphql_operations_total{operation="PayOrder",outcome="WRONG_EXPECTED_VERSION",type="mutation"}`: 1,
		`strata_graphql_operations_total{operation="anonymous",outcome="ok",type="query"}`:                       1,
		`strata_graphql_operations_total{operation="Watch",outcome="ok",type="subscription"}`:                    1,
		`strata_graphql_operations_total{operation="anonymous",outcome="GRAPHQL_PARSE_FAILED",type="unknown"}`:   1,
		`strata_graphql_operations_total{operation="x",outcome="ERROR",type="query"}`:                            1,
		`strata_graphql_operations_total{operation="other",outcome="ok",type="query"}`:                           2,
		// Subscriptions are counted, not timed.
		`strata_graphql_operation_duration_seconds_count{type="query"}`:    6,
		`strata_graphql_operation_duration_seconds_count{type="mutation"}`: 1,
		`strata_graphql_operation_duration_seconds_count{type="unknown"}`:  1,
	})
}

// Clients choose operation names: past a bound, new names share one series.
func TestOperationNamesAreBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	for i := range 300 {
		m.Operation(fmt.Sprintf("Op%d", i), "query", "ok", time.Millisecond)
	}
	m.Operation("Op0", "query", "ok", time.Millisecond) // a name already seen keeps its series
	s := metricstest.Scrape(t, serve(t, m))
	names := 0
	for k := range s {
		if strings.HasPrefix(k, "strata_graphql_operations_total{") {
			names++
		}
	}
	if names != 201 {
		t.Errorf("%d operation series, want 200 names and other", names)
	}
	s.Want(t, map[string]float64{
		`strata_graphql_operations_total{operation="Op0",outcome="ok",type="query"}`:   2,
		`strata_graphql_operations_total{operation="Op199",outcome="ok",type="query"}`: 1,
		`strata_graphql_operations_total{operation="other",outcome="ok",type="query"}`: 100,
	})
	if _, ok := s[`strata_graphql_operations_total{operation="Op200",outcome="ok",type="query"}`]; ok {
		t.Error("the 201st name got a series of its own")
	}
}

type statuses struct {
	infos []projection.Info
	err   error
}

func (s statuses) Status(context.Context) ([]projection.Info, error) { return s.infos, s.err }

func TestProjectionsAreReadAtScrapeTime(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	m.WatchProjections(statuses{infos: []projection.Info{
		{Name: "users", Position: "00000000000002f1000000000000002a", Lag: 5, Skipped: 1},
		{Name: "orders", Position: "", Lag: 0},
	}})
	metricstest.Scrape(t, serve(t, m)).Want(t, map[string]float64{
		`strata_projection_position{projection="users"}`:        42,
		`strata_projection_lag_events{projection="users"}`:      5,
		`strata_projection_skipped_events{projection="users"}`:  1,
		`strata_projection_position{projection="orders"}`:       0,
		`strata_projection_lag_events{projection="orders"}`:     0,
		`strata_projection_skipped_events{projection="orders"}`: 0,
	})
}

// A collector that cannot read leaves its metrics out; the rest is still served.
func TestAFailingCollectorSpoilsOnlyItsOwnMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	m.WatchProjections(statuses{err: errors.New("database down")})
	m.Appended(1, time.Millisecond, nil)
	url := serve(t, m)
	s := metricstest.Scrape(t, url)
	s.Want(t, map[string]float64{`strata_appends_total{outcome="ok"}`: 1})
	for k := range s {
		if strings.HasPrefix(k, "strata_projection_") {
			t.Errorf("%s served from a failed status", k)
		}
	}
	// The failure is counted once the scrape that met it is over.
	metricstest.Scrape(t, url).Want(t, map[string]float64{`promhttp_metric_handler_errors_total{cause="gathering"}`: 1})
}

func TestPoolStatistics(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 7)
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(slog.New(slog.DiscardHandler))
	m.WatchPool(pool)
	s := metricstest.Scrape(t, serve(t, m))
	s.Want(t, map[string]float64{
		`strata_pgxpool_max_connections`:         7,
		`strata_pgxpool_acquired_connections`:    0,
		`strata_pgxpool_canceled_acquires_total`: 0,
	})
	for _, k := range []string{"strata_pgxpool_total_connections", "strata_pgxpool_idle_connections", "strata_pgxpool_acquires_total", "strata_pgxpool_new_connections_total"} {
		if s[k] < 1 {
			t.Errorf("%s = %v after a ping, want at least 1", k, s[k])
		}
	}
}

// A part built without metrics hands a nil *Metrics around: it counts nothing and serves 404.
func TestNilMetricsDoNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.Appended(1, time.Millisecond, nil)
	m.EventsRead(1)
	m.SubscriptionStarted()
	m.SubscriptionEnded()
	m.SubscriberBehind()
	m.SlowConsumerDropped()
	m.Operation("Q", "query", "ok", time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil metrics served %d", rec.Code)
	}
}
