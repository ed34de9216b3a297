package graph_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// Each operation that runs is one server span named by its type and name, with the
// conventional attributes and its outcome; a client's error does not mark it failed; a
// document that does not parse runs nothing and makes no span.
func TestOperationSpans(t *testing.T) {
	t.Parallel()
	store := eventstore.New(dbtest.Pool(t), eventstore.Options{})
	if _, err := store.Append(context.Background(), "order-1", eventstore.NoStream(), []eventstore.EventData{{Type: "OrderCreated", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store, TracerProvider: tp}, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	for _, tc := range []struct {
		query, span, name, outcome string
	}{
		{`query Stream { stream(id: "order-1") { version } }`, "query Stream", "Stream", "ok"},
		{`{ stream(id: "order-1") { version } }`, "query", "", "ok"},
		{`query Bad { stream(id: "") { version } }`, "query Bad", "Bad", graph.CodeBadUserInput},
		{`query Broken { stream(`, "", "", ""},
	} {
		exp.Reset()
		post(t, srv.URL, tc.query, nil)
		got := exp.GetSpans()
		if tc.span == "" {
			if len(got) != 0 {
				t.Errorf("%s: %d spans, want none", tc.query, len(got))
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d spans, want 1: %v", tc.query, len(got), got)
		}
		sp := got[0]
		attrs := map[string]string{}
		for _, kv := range sp.Attributes {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if sp.Name != tc.span || sp.SpanKind != trace.SpanKindServer || sp.Parent.IsValid() {
			t.Errorf("%s: span %q kind %v parent %v, want %q, a server span and a root", tc.query, sp.Name, sp.SpanKind, sp.Parent, tc.span)
		}
		if attrs["graphql.operation.type"] != "query" || attrs["graphql.operation.name"] != tc.name || attrs["strata.outcome"] != tc.outcome {
			t.Errorf("%s: attributes %v, want type query, name %q, outcome %s", tc.query, attrs, tc.name, tc.outcome)
		}
		if sp.Status.Code != codes.Unset {
			t.Errorf("%s: status %v, want unset (the client's error is not the server's failure)", tc.query, sp.Status)
		}
	}
}
