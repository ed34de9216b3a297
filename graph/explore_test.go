package graph_test

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// genericHistory is a page of AggregateState.history as the tests read it.
type genericHistory struct {
	Edges []struct {
		Cursor string
		Node   struct {
			Event struct {
				Type       string
				Version    int
				RecordedAt time.Time
			}
			Fields  json.RawMessage
			Changes []struct {
				Field         string
				Before, After json.RawMessage
			}
		}
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   string
	}
}

// changed is an entry's changes as "field: before → after", in their order.
func (h genericHistory) changed(i int) string {
	var out []string
	for _, c := range h.Edges[i].Node.Changes {
		out = append(out, c.Field+": "+string(c.Before)+" → "+string(c.After))
	}
	return strings.Join(out, "; ")
}

// aggregateKinds and aggregate serve every registered aggregate from its declaration alone: a
// user, an order and a product, now, at a version and as of a time, with their history and
// what each event changed, paged and refused as the typed fields are.
func TestAggregateServesEveryRegisteredAggregate(t *testing.T) {
	t.Parallel()
	kinds := aggregates.All()
	store := eventstore.New(dbtest.Pool(t), eventstore.Options{Upcasters: command.Upcasters(kinds)})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store, Commands: command.New(store, command.Options{})}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	must := func(q string, vars map[string]any, out any) {
		t.Helper()
		r := post(t, srv.URL, q, vars)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", q, r.Errors)
		}
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("%s: %s: %v", q, r.Data, err)
		}
	}

	var registry struct{ AggregateKinds json.RawMessage }
	must(`{ aggregateKinds { name category readModel } }`, nil, &registry)
	// Every registered aggregate, in the registry's order, the seed's three first.
	type kind struct{ Name, Category, ReadModel string } // ReadModel "" for none (null)
	var got, want []kind
	if err := json.Unmarshal(registry.AggregateKinds, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range aggregates.All() {
		d := k.Describe()
		w := kind{Name: d.Name, Category: d.Category}
		if d.ReadModel != nil {
			w.ReadModel = d.ReadModel.Table
		}
		want = append(want, w)
	}
	if !slices.Equal(got, want) || len(got) < 3 || !strings.HasPrefix(string(registry.AggregateKinds), `[{"name":"User","category":"user","readModel":"users"},{"name":"Order","category":"order","readModel":"orders"},{"name":"Product","category":"product","readModel":"products"}`) {
		t.Errorf("aggregateKinds = %s, want %+v", registry.AggregateKinds, want)
	}

	// A user who changed their email, an order that was paid, a product that was restocked.
	var u struct {
		RegisterUser struct{ User struct{ ID string } }
	}
	must(`mutation { registerUser(name: "Ada", email: "ada@example.com") { user { id } } }`, nil, &u)
	userID := u.RegisterUser.User.ID
	must(`mutation($id: ID!) { changeUserEmail(id: $id, email: "ada@example.org") { user { id } } }`, map[string]any{"id": userID}, &struct{}{})
	var o struct {
		CreateOrder struct{ Order struct{ ID string } }
	}
	must(`mutation($c: ID!) { createOrder(customerId: $c, items: [{sku: "BOOK", quantity: 2, unitPrice: "9.99"}]) { order { id } } }`, map[string]any{"c": userID}, &o)
	orderID := o.CreateOrder.Order.ID
	must(`mutation($id: ID!) { payOrder(id: $id, amount: "19.98") { order { id } } }`, map[string]any{"id": orderID}, &struct{}{})
	var p struct {
		CreateProduct struct{ Product struct{ ID string } }
	}
	must(`mutation { createProduct(sku: "LAMP-1", name: "Desk lamp", price: "9.99", stock: 3) { product { id } } }`, nil, &p)
	productID := p.CreateProduct.Product.ID
	must(`mutation($id: ID!) { restockProduct(id: $id, quantity: 2) { product { id } } }`, map[string]any{"id": productID}, &struct{}{})

	const stateQ = `query($c: String!, $id: ID!, $v: Int, $t: Time) { aggregate(category: $c, id: $id, atVersion: $v, asOf: $t) { category id version fields } }`
	state := func(vars map[string]any) string {
		t.Helper()
		var out struct{ Aggregate json.RawMessage }
		must(stateQ, vars, &out)
		return string(out.Aggregate)
	}
	const historyQ = `query($c: String!, $id: ID!, $first: Int, $after: String) { aggregate(category: $c, id: $id) { history(first: $first, after: $after) {
		edges { cursor node { event { type version recordedAt } fields changes { field before after } } }
		pageInfo { hasNextPage endCursor } } } }`
	history := func(vars map[string]any) genericHistory {
		t.Helper()
		var out struct {
			Aggregate struct{ History genericHistory }
		}
		must(historyQ, vars, &out)
		return out.Aggregate.History
	}

	t.Run("a user", func(t *testing.T) {
		if got, want := state(map[string]any{"c": "user", "id": userID}), `{"category":"user","id":"`+userID+`","version":2,"fields":{"name":"Ada","email":"ada@example.org","status":"ACTIVE"}}`; got != want {
			t.Errorf("the user now: %s, want %s", got, want)
		}
		if got, want := state(map[string]any{"c": "user", "id": userID, "v": 1}), `{"category":"user","id":"`+userID+`","version":1,"fields":{"name":"Ada","email":"ada@example.com","status":"ACTIVE"}}`; got != want {
			t.Errorf("the user at version 1: %s, want %s", got, want)
		}
		h := history(map[string]any{"c": "user", "id": userID})
		if len(h.Edges) != 2 || h.PageInfo.HasNextPage || h.Edges[0].Node.Event.Type != "UserRegistered" || h.Edges[1].Node.Event.Type != "EmailChanged" {
			t.Fatalf("the user's history: %+v", h)
		}
		if got, want := h.changed(1), `email: "ada@example.com" → "ada@example.org"`; got != want {
			t.Errorf("the email change changed %s, want %s", got, want)
		}
	})

	t.Run("an order", func(t *testing.T) {
		if got, want := state(map[string]any{"c": "order", "id": orderID, "v": 1}), `{"category":"order","id":"`+orderID+`","version":1,"fields":{"status":"PENDING","customerId":"`+userID+`","items":[{"quantity":2,"sku":"BOOK","unitPrice":"9.99"}],"total":"19.98"}}`; got != want {
			t.Errorf("the order at version 1: %s, want %s", got, want)
		}
		if got := state(map[string]any{"c": "order", "id": orderID}); !strings.Contains(got, `"version":2,"fields":{"status":"PAID",`) {
			t.Errorf("the order now: %s, want PAID at version 2", got)
		}
		h := history(map[string]any{"c": "order", "id": orderID})
		if len(h.Edges) != 2 || h.Edges[1].Node.Event.Type != "OrderPaid" {
			t.Fatalf("the order's history: %+v", h)
		}
		if got, want := h.changed(1), `status: "PENDING" → "PAID"`; got != want {
			t.Errorf("the payment changed %s, want %s", got, want)
		}
		// The same changes as the typed field's history.
		var typed struct {
			Order struct{ History json.RawMessage }
		}
		must(`query($id: ID!) { order(id: $id, atVersion: 2) { history { edges { node { changes { field before after } } } } } }`, map[string]any{"id": orderID}, &typed)
		var generic struct {
			Aggregate struct{ History json.RawMessage }
		}
		must(`query($id: ID!) { aggregate(category: "order", id: $id) { history { edges { node { changes { field before after } } } } } }`, map[string]any{"id": orderID}, &generic)
		if a, b := string(typed.Order.History), string(generic.Aggregate.History); a != b {
			t.Errorf("the order's history changes: typed %s, generic %s", a, b)
		}
	})

	t.Run("a product", func(t *testing.T) {
		if got, want := state(map[string]any{"c": "product", "id": productID}), `{"category":"product","id":"`+productID+`","version":2,"fields":{"sku":"LAMP-1","name":"Desk lamp","price":"9.99","stock":5,"status":"ACTIVE"}}`; got != want {
			t.Errorf("the product now: %s, want %s", got, want)
		}
		if got := state(map[string]any{"c": "product", "id": productID, "v": 1}); !strings.Contains(got, `"version":1,`) || !strings.Contains(got, `"stock":3,`) {
			t.Errorf("the product at version 1: %s, want stock 3", got)
		}
		if got := state(map[string]any{"c": "product", "id": productID, "v": 3}); got != "null" {
			t.Errorf("the product at version 3, which it never had: %s, want null", got)
		}

		// History a page at a time: the cursor is a version.
		first := history(map[string]any{"c": "product", "id": productID, "first": 1})
		if len(first.Edges) != 1 || !first.PageInfo.HasNextPage || first.PageInfo.EndCursor != "1" || first.Edges[0].Node.Event.Type != "ProductCreated" {
			t.Fatalf("the product's first page of history: %+v", first)
		}
		if got, want := first.changed(0), `sku: null → "LAMP-1"; name: null → "Desk lamp"; price: null → "9.99"; stock: null → 3; status: null → "ACTIVE"`; got != want {
			t.Errorf("the creation changed %s, want %s", got, want)
		}
		next := history(map[string]any{"c": "product", "id": productID, "first": 1, "after": first.PageInfo.EndCursor})
		if len(next.Edges) != 1 || next.PageInfo.HasNextPage || next.Edges[0].Node.Event.Version != 2 {
			t.Fatalf("the product's second page of history: %+v", next)
		}
		if got, want := next.changed(0), `stock: 3 → 5`; got != want {
			t.Errorf("the restock changed %s, want %s", got, want)
		}
		if got, want := string(next.Edges[0].Node.Fields), `{"sku":"LAMP-1","name":"Desk lamp","price":"9.99","stock":5,"status":"ACTIVE"}`; got != want {
			t.Errorf("the fields after the restock: %s, want %s", got, want)
		}

		// As of a time: the log as of the creation, and before it.
		created := first.Edges[0].Node.Event.RecordedAt
		if got := state(map[string]any{"c": "product", "id": productID, "t": created.Format(time.RFC3339Nano)}); !strings.Contains(got, `"version":1,`) || !strings.Contains(got, `"stock":3,`) {
			t.Errorf("the product as of its creation: %s, want version 1 with stock 3", got)
		}
		if got := state(map[string]any{"c": "product", "id": productID, "t": created.Add(-time.Microsecond).Format(time.RFC3339Nano)}); got != "null" {
			t.Errorf("the product before its creation: %s, want null", got)
		}
	})

	t.Run("what does not exist is null", func(t *testing.T) {
		for _, c := range []string{"user", "order", "product"} {
			if got := state(map[string]any{"c": c, "id": uuid.NewString()}); got != "null" {
				t.Errorf("a %s that does not exist: %s, want null", c, got)
			}
		}
		// An order stream whose first event is not OrderCreated has events, but no order.
		stray := uuid.NewString()
		if _, err := store.Append(t.Context(), "order-"+stray, eventstore.NoStream(), []eventstore.EventData{{Type: "SomethingElse", Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		if got := state(map[string]any{"c": "order", "id": stray}); got != "null" {
			t.Errorf("an order stream without OrderCreated: %s, want null", got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			what string
			q    string
			vars map[string]any
			want string // in the message
		}{
			{"an unknown category", stateQ, map[string]any{"c": "invoice", "id": productID}, `"invoice" is not the category of a registered aggregate (user, order, product`},
			{"an id that is not one", stateQ, map[string]any{"c": "product", "id": "LAMP-1"}, "not an id"},
			{"atVersion 0", stateQ, map[string]any{"c": "product", "id": productID, "v": 0}, "at least 1"},
			{"asOf and atVersion", stateQ, map[string]any{"c": "product", "id": productID, "v": 1, "t": time.Now().Format(time.RFC3339Nano)}, "not both"},
			{"asOf in the future", stateQ, map[string]any{"c": "product", "id": productID, "t": time.Now().Add(time.Hour).Format(time.RFC3339Nano)}, "in the future"},
			{"a cursor that is not one", historyQ, map[string]any{"c": "product", "id": productID, "after": "+1"}, "not a cursor"},
		} {
			r := post(t, srv.URL, tc.q, tc.vars)
			code, _, msg := gqlErr(t, r)
			if code != graph.CodeBadUserInput || !strings.Contains(msg, tc.want) {
				t.Errorf("%s: %s %q, want %s with %q", tc.what, code, msg, graph.CodeBadUserInput, tc.want)
			}
		}
	})
}
