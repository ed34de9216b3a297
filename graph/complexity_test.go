package graph_test

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// Every field that takes first costs its items times first (the schema's default when not
// given), with no price of its own in limits.go: an aggregate added on the runtime, such as
// Product, is priced like User and Order.
func TestPagesCostTheirItemsWhateverTheAggregate(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	store := eventstore.New(pool, eventstore.Options{})
	r := &graph.Resolver{Store: store, Commands: command.New(store, command.Options{}), Reader: query.New(pool), Limits: graph.Limits{MaxComplexity: 3000}}
	srv := httptest.NewServer(graph.NewHandler(r, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for _, c := range []struct {
		query, code string
	}{
		// 1 + 10 × (edges 1 + node 1 + history (1 + 20 default × (edges 1 + cursor 1)) + ...)
		{`{ products(first: 10) { edges { node { id history { edges { cursor } } } } } }`, ""},
		{`{ products(first: 100) { edges { node { id history { edges { cursor } } } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		{`{ products { edges { node { id history(first: 100) { edges { cursor } } } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		{`{ users(first: 100) { edges { node { id history { edges { cursor } } } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		{`{ allEvents { edges { cursor node { id type } } } }`, ""},
		{`{ allEvents(first: 1000) { edges { cursor node { id type data } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
	} {
		res := post(t, srv.URL, c.query, nil)
		got := ""
		if len(res.Errors) > 0 {
			got, _ = res.Errors[0].Extensions["code"].(string)
		}
		if got != c.code {
			t.Errorf("%s: code %q (%+v), want %q", c.query, got, res.Errors, c.code)
		}
	}
}
