package graph_test

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/platform/metrics"
	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// postNamed sends a request with an operationName, which post leaves out.
func postNamed(t *testing.T, url, name, query string) {
	t.Helper()
	postRequest(t, url, map[string]any{"query": query, "operationName": name})
}

// Operations are counted by name, type and outcome once they end, refused ones too; queries
// and mutations are timed.
func TestOperationMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	store := eventstore.New(dbtest.Pool(t), eventstore.Options{Observer: m})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store, Metrics: m}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	const put = `mutation Put($v: Int) { appendEvents(streamId: "m-1", expectedVersion: $v, events: [{type: "Noted", data: {}}]) { position } }`
	if r := post(t, srv.URL, put, map[string]any{"v": 0}); len(r.Errors) > 0 {
		t.Fatalf("append: %+v", r.Errors)
	}
	if code, _, _ := gqlErr(t, post(t, srv.URL, put, map[string]any{"v": 0})); code != graph.CodeWrongExpectedVersion {
		t.Fatalf("second append: %s", code)
	}
	for range 2 {
		if r := post(t, srv.URL, `query Look { stream(id: "m-1") { version } }`, nil); len(r.Errors) > 0 {
			t.Fatalf("query: %+v", r.Errors)
		}
	}
	if r := post(t, srv.URL, `{ stream(id: "m-1") { version } }`, nil); len(r.Errors) > 0 {
		t.Fatalf("anonymous query: %+v", r.Errors)
	}
	// Refused before they ran: the name is the one the request gives, the type unknown.
	postNamed(t, srv.URL, "Oops", `query Oops { nope }`)
	postNamed(t, srv.URL, "Broken", `query Broken {`)

	scrape := httptest.NewServer(m.Handler())
	t.Cleanup(scrape.Close)
	metricstest.Scrape(t, scrape.URL).Want(t, map[string]float64{
		`strata_graphql_operations_total{operation="Put",outcome="ok",type="mutation"}`:                        1,
		`strata_graphql_operations_total{operation="Put",outcome="WRONG_EXPECTED_VERSION",type="mutation"}`:    1,
		`strata_graphql_operations_total{operation="Look",outcome="ok",type="query"}`:                          2,
		`strata_graphql_operations_total{operation="anonymous",outcome="ok",type="query"}`:                     1,
		`strata_graphql_operations_total{operation="Oops",outcome="GRAPHQL_VALIDATION_FAILED",type="unknown"}`: 1,
		`strata_graphql_operations_total{operation="Broken",outcome="GRAPHQL_PARSE_FAILED",type="unknown"}`:    1,
		`strata_graphql_operation_duration_seconds_count{type="mutation"}`:                                     2,
		`strata_graphql_operation_duration_seconds_count{type="query"}`:                                        3,
		`strata_graphql_operation_duration_seconds_count{type="unknown"}`:                                      2,
		`strata_appends_total{outcome="ok"}`:                                                                   1,
		`strata_appends_total{outcome="conflict"}`:                                                             1,
		`strata_events_appended_total`:                                                                         1,
	})
}
