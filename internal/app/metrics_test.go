package app

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// waitMetric scrapes until key has the value want, for what the server does after answering.
func waitMetric(t *testing.T, url, key string, want float64) metricstest.Samples {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := metricstest.Scrape(t, url)
		if s[key] == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 20s, want %v", key, s[key], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GET /metrics, scraped over HTTP from the running server, counts exactly what was done to it.
func TestMetricsCountWhatTheServerDid(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	metricsURL := "http://" + a + "/metrics"

	const put = `mutation Put($v: Int) { appendEvents(streamId: "note-1", expectedVersion: $v, events: [{type: "Noted", data: {}}]) { position } }`
	if r := gql(t, a, put, map[string]any{"v": 0}); len(r.Errors) > 0 {
		t.Fatalf("append: %+v", r.Errors)
	}
	wantCode(t, "conflicting append", gql(t, a, put, map[string]any{"v": 0}), "WRONG_EXPECTED_VERSION")
	if r := gql(t, a, `query Look { stream(id: "note-1") { version } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("query: %+v", r.Errors)
	}
	wantCode(t, "invalid query", gql(t, a, `{ nope }`, nil), "GRAPHQL_VALIDATION_FAILED")

	c, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Subscribe("1", `subscription Watch { events(streamId: "note-1") { position } }`, nil); err != nil {
		t.Fatal(err)
	}
	// The subscription starts after the client's message is read; nothing else waits for it.
	s := waitMetric(t, metricsURL, "strata_subscriptions_active", 1)
	s.Want(t, map[string]float64{
		`strata_appends_total{outcome="ok"}`:       1,
		`strata_appends_total{outcome="conflict"}`: 1,
		`strata_appends_total{outcome="invalid"}`:  0,
		`strata_appends_total{outcome="error"}`:    0,
		`strata_append_duration_seconds_count`:     2,
		`strata_events_appended_total`:             1,

		`strata_graphql_operations_total{operation="Put",outcome="ok",type="mutation"}`:                             1,
		`strata_graphql_operations_total{operation="Put",outcome="WRONG_EXPECTED_VERSION",type="mutation"}`:         1,
		`strata_graphql_operations_total{operation="Look",outcome="ok",type="query"}`:                               1,
		`strata_graphql_operations_total{operation="anonymous",outcome="GRAPHQL_VALIDATION_FAILED",type="unknown"}`: 1,
		`strata_graphql_operation_duration_seconds_count{type="mutation"}`:                                          2,
		`strata_graphql_operation_duration_seconds_count{type="query"}`:                                             1,

		`strata_websocket_connections_active`: 1,
		`strata_subscriptions_active`:         1,
		`strata_slow_consumers_dropped_total`: 0,
		`strata_subscriptions_behind_total`:   0,

		// Neither projection reads the note category: nothing waits for them.
		`strata_projection_lag_events{projection="users"}`:  0,
		`strata_projection_lag_events{projection="orders"}`: 0,
	})
	for _, k := range []string{`strata_projection_position{projection="users"}`, `strata_projection_position{projection="orders"}`, "strata_events_read_total", "go_goroutines"} {
		if _, ok := s[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	if s["strata_pgxpool_total_connections"] < 1 || s["strata_pgxpool_max_connections"] < 1 || s["strata_pgxpool_acquires_total"] < 1 {
		t.Errorf("pool: total %v, max %v, acquires %v; want each at least 1",
			s["strata_pgxpool_total_connections"], s["strata_pgxpool_max_connections"], s["strata_pgxpool_acquires_total"])
	}
	if _, ok := s[`strata_graphql_operations_total{operation="Watch",outcome="ok",type="subscription"}`]; ok {
		t.Error("a running subscription was counted as an operation before it ended")
	}

	// A subscription counts as an operation when it stops; a connection when it closes.
	if err := c.Stop("1"); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, metricsURL, "strata_subscriptions_active", 0)
	waitMetric(t, metricsURL, `strata_graphql_operations_total{operation="Watch",outcome="ok",type="subscription"}`, 1)
	_ = c.Close()
	s = waitMetric(t, metricsURL, "strata_websocket_connections_active", 0)
	if _, ok := s[`strata_graphql_operation_duration_seconds_count{type="subscription"}`]; ok {
		t.Error("a subscription was timed")
	}
	if out := srv.stderr.String(); strings.Contains(out, "error gathering metrics") {
		t.Errorf("a collector failed:\n%s", out)
	}
}
