package graph_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// BenchmarkAppendOverGraphQL is the server's side of one append as `strata bench graphql`
// sends it, one at a time: GraphQL's handler (limits, persisted queries, authorization, limits of shape and
// complexity, execution), the resolver, the store and PostgreSQL, without the network. Its
// allocs/op, which the machine's noise does not move, is what the request path allocates:
//
//	go test -run XXX -bench AppendOverGraphQL -benchmem ./graph
func BenchmarkAppendOverGraphQL(b *testing.B) {
	// Group commit on, as strata serve has it by default.
	store := eventstore.New(dbtest.Pool(b), eventstore.Options{GroupCommit: true, GroupWriters: eventstore.DefaultGroupWriters})
	h := graph.NewHandler(&graph.Resolver{Store: store, Commands: command.New(store, command.Options{})}, slog.New(slog.DiscardHandler))
	const query = "mutation Append($s: String!, $v: Int, $e: [EventInput!]!) {\n  appendEvents(streamId: $s, expectedVersion: $v, events: $e) { nextExpectedVersion }\n}"
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		body := fmt.Sprintf(`{"query":%q,"variables":{"s":"ticket-%d","e":[{"type":"TicketIssued","data":{"orderId":"o1","items":[{"sku":"A","qty":2,"price":9.99}],"customer":"c-123"}}]}}`, query, n)
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"nextExpectedVersion":1`)) {
			b.Fatalf("append %d: %d %s", n, w.Code, w.Body)
		}
	}
}
