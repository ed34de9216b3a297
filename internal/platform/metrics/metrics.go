// Package metrics exposes Strata's Prometheus metrics: what the event store, the subscription
// feed, the projectors, the connection pool and the GraphQL layer are doing. Each Metrics has
// its own registry, never the process-wide default one, so that several servers in one process
// (tests, benchmarks) count apart.
//
// The packages it watches know nothing of Prometheus: each offers an optional observer in its
// options, which a *Metrics satisfies; the rest is read at scrape time by collectors.
package metrics

import (
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// Append outcomes, the values of strata_appends_total's outcome label.
const (
	OutcomeOK       = "ok"
	OutcomeConflict = "conflict" // the stream was not at the expected version
	OutcomeInvalid  = "invalid"  // refused input, an event id already used otherwise, or a deleted stream
	OutcomeError    = "error"    // anything else: the database, a cancelled request
)

// Operation names come from clients: only so many distinct ones get their own series, and a
// name that does not look like a GraphQL name never does.
const (
	maxOperationNames = 200
	otherOperation    = "other"
	anonymous         = "anonymous"
)

var (
	operationName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)                    //nolint:gochecknoglobals // a compiled constant
	errorCode     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)                     //nolint:gochecknoglobals // a compiled constant
	operationType = map[string]bool{"query": true, "mutation": true, "subscription": true} //nolint:gochecknoglobals // a constant table
)

// Metrics holds Strata's metrics. Its methods are safe for concurrent use, and they do nothing
// on a nil *Metrics, so that a part built without metrics needs no checks.
type Metrics struct {
	reg    *prometheus.Registry
	logger *slog.Logger

	appends        *prometheus.CounterVec
	appendDuration prometheus.Histogram
	eventsAppended prometheus.Counter
	eventsRead     prometheus.Counter

	subscriptions prometheus.Gauge
	behind        prometheus.Counter
	slowDropped   prometheus.Counter

	operations        *prometheus.CounterVec
	operationDuration *prometheus.HistogramVec

	fallbacks     *prometheus.CounterVec // nil without a read replica (replica.go)
	leaders       *prometheus.GaugeVec
	notifications prometheus.Counter

	mu    sync.Mutex
	names map[string]bool // operation names with their own series
}

// New returns Metrics on a registry of their own, with the Go runtime's and the process's
// metrics registered too. logger receives scrape errors (a collector that could not read).
func New(logger *slog.Logger) *Metrics {
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		logger: logger,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_appends_total",
			Help: "Append calls (one stream or several in one transaction), by outcome: ok, conflict (wrong expected version), invalid (refused input, a reused event id or a deleted stream), error.",
		}, []string{"outcome"}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_append_duration_seconds",
			Help:    "How long append calls took, whatever their outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms to 4s
		}),
		eventsAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_events_appended_total",
			Help: "Events written by appends (a repeated append writes none).",
		}),
		eventsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_events_read_total",
			Help: "Events returned by the event store's reads, to every reader: queries, commands, projectors and the subscription feed.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_subscriptions_active",
			Help: "Subscriptions running on the subscription feed, catching up or live.",
		}),
		behind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_subscriptions_behind_total",
			Help: "Times a subscriber's full buffer made the feed let go of it, to read on from the table by itself.",
		}),
		slowDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_slow_consumers_dropped_total",
			Help: "WebSocket connections closed and SSE streams ended because the client did not take a message within the write timeout.",
		}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_graphql_operations_total",
			Help: "GraphQL operations when they end (a subscription when it stops), by operation name, type and outcome: ok or the first error's code.",
		}, []string{"operation", "type", "outcome"}),
		operationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_graphql_operation_duration_seconds",
			Help:    "How long GraphQL queries and mutations took, by type; subscriptions are not timed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms to 8s
		}, []string{"type"}),
		leaders: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_leader",
			Help: "1 while this process leads the named work (projection:<name>, ...), else 0.",
		}, []string{"name"}),
		notifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_listen_notifications_total",
			Help: "Notifications of appends (by any process) received on the LISTEN connection.",
		}),
		names: map[string]bool{},
	}
	for _, o := range []string{OutcomeOK, OutcomeConflict, OutcomeInvalid, OutcomeError} {
		m.appends.WithLabelValues(o) // every outcome shows, at 0, from the start
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.appends, m.appendDuration, m.eventsAppended, m.eventsRead,
		m.subscriptions, m.behind, m.slowDropped,
		m.operations, m.operationDuration,
		m.leaders, m.notifications,
	)
	return m
}

// Handler serves the metrics in Prometheus's text format. A collector that fails leaves its
// metrics out of the answer, logged, and the rest is served. Without metrics (nil) it answers
// 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total counts scrapes that failed
	})
}

// Appended records an append call: events written, how long it took, and its error. It is
// the event store's observer (eventstore.Observer).
func (m *Metrics) Appended(events int, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.appends.WithLabelValues(appendOutcome(err)).Inc()
	m.appendDuration.Observe(d.Seconds())
	m.eventsAppended.Add(float64(events))
}

func appendOutcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return OutcomeConflict
	case errors.Is(err, eventstore.ErrInvalidInput), errors.Is(err, eventstore.ErrDuplicateEventID), errors.Is(err, eventstore.ErrStreamDeleted):
		return OutcomeInvalid
	default:
		return OutcomeError
	}
}

// EventsRead records a read of the event store that returned n events.
func (m *Metrics) EventsRead(n int) {
	if m == nil {
		return
	}
	m.eventsRead.Add(float64(n))
}

// SubscriptionStarted records a subscription joining the subscription feed (hub.Observer).
func (m *Metrics) SubscriptionStarted() {
	if m == nil {
		return
	}
	m.subscriptions.Inc()
}

// SubscriptionEnded records the end of a subscription SubscriptionStarted recorded.
func (m *Metrics) SubscriptionEnded() {
	if m == nil {
		return
	}
	m.subscriptions.Dec()
}

// SubscriberBehind records the feed letting go of a subscriber whose buffer was full.
func (m *Metrics) SubscriberBehind() {
	if m == nil {
		return
	}
	m.behind.Inc()
}

// Leading records whether this process leads name (leader.Observer).
func (m *Metrics) Leading(name string, leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leaders.WithLabelValues(name).Set(v)
}

// Notified records a notification received on the LISTEN connection.
func (m *Metrics) Notified() {
	if m == nil {
		return
	}
	m.notifications.Inc()
}

// SlowConsumerDropped records a WebSocket connection closed, or an SSE stream ended, because a
// write timed out.
func (m *Metrics) SlowConsumerDropped() {
	if m == nil {
		return
	}
	m.slowDropped.Inc()
}

// Operation records a GraphQL operation that ended: its name as the client gave it ("" when
// anonymous), its type (query, mutation, subscription; anything else counts as unknown), its
// outcome ("ok" or an error code) and how long it took.
func (m *Metrics) Operation(name, typ, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	if !operationType[typ] {
		typ = "unknown"
	}
	if outcome != OutcomeOK && !errorCode.MatchString(outcome) {
		outcome = "ERROR"
	}
	m.operations.WithLabelValues(m.operationLabel(name), typ, outcome).Inc()
	if typ != "subscription" { // a subscription's duration is its client's business
		m.operationDuration.WithLabelValues(typ).Observe(d.Seconds())
	}
}

// operationLabel bounds the operation names that become series: the first maxOperationNames
// well-formed names keep theirs, every other one is "other".
func (m *Metrics) operationLabel(name string) string {
	switch {
	case name == "":
		return anonymous
	case !operationName.MatchString(name):
		return otherOperation
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names[name] {
		return name
	}
	if len(m.names) >= maxOperationNames {
		return otherOperation
	}
	m.names[name] = true
	return name
}
