package app

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	runtimecommand "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// The Product aggregate was added on the runtime with a declaration, a schema file, its
// resolvers, a migration and a registration line. These tests drive everything it gets from
// the runtime, over HTTP and WebSocket against the running server and real PostgreSQL.

type productOut struct {
	Product struct {
		ID, Sku, Name, Price, Status string
		Stock, Version               int
	}
	Position string
	DryRun   bool
	Events   []struct {
		StreamID string
		Type     string
		Version  int
		Data     json.RawMessage
		Tags     []string
	}
}

const (
	productFields    = `product { id sku name price stock status version } position dryRun events { streamId type version data tags }`
	createProductM   = `mutation($sku: String!, $n: String!, $p: Money!, $s: Int!, $dry: Boolean) { createProduct(sku: $sku, name: $n, price: $p, stock: $s, dryRun: $dry) { ` + productFields + ` } }`
	renameProductM   = `mutation($id: ID!, $n: String!, $v: Int, $dry: Boolean) { renameProduct(id: $id, name: $n, expectedVersion: $v, dryRun: $dry) { ` + productFields + ` } }`
	priceProductM    = `mutation($id: ID!, $p: Money!, $v: Int) { changeProductPrice(id: $id, price: $p, expectedVersion: $v) { ` + productFields + ` } }`
	restockProductM  = `mutation($id: ID!, $q: Int!, $v: Int) { restockProduct(id: $id, quantity: $q, expectedVersion: $v) { ` + productFields + ` } }`
	discontinueProdM = `mutation($id: ID!, $v: Int, $dry: Boolean) { discontinueProduct(id: $id, expectedVersion: $v, dryRun: $dry) { ` + productFields + ` } }`
)

func TestProductEndToEnd(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	create := func(sku, name, price string, stock int) gqlResponse {
		return gql(t, a, createProductM, map[string]any{"sku": sku, "n": name, "p": price, "s": stock})
	}

	// Create, and the rules of creation.
	var p productOut
	ok(t, create("LAMP-1", "Desk lamp", "19.90", 5), "createProduct", &p)
	id := p.Product.ID
	if p.Product.Sku != "LAMP-1" || p.Product.Name != "Desk lamp" || p.Product.Price != "19.90" || p.Product.Stock != 5 || p.Product.Status != "ACTIVE" || p.Product.Version != 1 || p.Position == "" || p.DryRun {
		t.Fatalf("created %+v", p)
	}
	if len(p.Events) != 1 || p.Events[0].Type != "ProductCreated" || p.Events[0].StreamID != "product-"+id ||
		!slices.Equal(p.Events[0].Tags, []string{runtimecommand.ValueTag("productsku", "lamp-1")}) {
		t.Errorf("createProduct appended %+v, want ProductCreated tagged with the SKU's hash", p.Events)
	}
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		what, sku, name, price string
		stock                  int
		rule                   string
	}{
		{"a taken SKU", "LAMP-1", "Other", "1.00", 0, "sku-unique"},
		{"a taken SKU in another case", "lamp-1", "Other", "1.00", 0, "sku-unique"},
		{"an empty SKU", " ", "Other", "1.00", 0, "sku-valid"},
		{"a SKU of 201 characters", long, "Other", "1.00", 0, "sku-valid"},
		{"an empty name", "NEW-1", "", "1.00", 0, "name-valid"},
		{"a name of 201 characters", "NEW-1", long, "1.00", 0, "name-valid"},
		{"a zero price", "NEW-1", "Other", "0", 0, "product-price-valid"},
		{"a negative stock", "NEW-1", "Other", "1.00", -1, "stock-valid"},
		{"a stock over 10^9", "NEW-1", "Other", "1.00", 1_000_000_001, "stock-valid"},
	} {
		wantRule(t, tc.what, create(tc.sku, tc.name, tc.price, tc.stock), tc.rule)
	}

	// Commands, expected versions and dry runs.
	ok(t, gql(t, a, renameProductM, map[string]any{"id": id, "n": "Desk lamp, brass", "v": 1}), "renameProduct", &p)
	if p.Product.Name != "Desk lamp, brass" || p.Product.Version != 2 {
		t.Errorf("renamed %+v", p.Product)
	}
	stale := gql(t, a, renameProductM, map[string]any{"id": id, "n": "Stale", "v": 1})
	wantCode(t, "a stale expectedVersion", stale, "WRONG_EXPECTED_VERSION")
	if len(stale.Errors) == 1 && (stale.Errors[0].Extensions["actualVersion"] != float64(2) || stale.Errors[0].Extensions["expectedVersion"] != float64(1)) {
		t.Errorf("conflict extensions %+v", stale.Errors[0].Extensions)
	}
	var dry productOut
	ok(t, gql(t, a, renameProductM, map[string]any{"id": id, "n": "Dry", "dry": true}), "renameProduct", &dry)
	if !dry.DryRun || dry.Position != "" || dry.Product.Name != "Dry" || dry.Product.Version != 3 || len(dry.Events) != 1 || dry.Events[0].Type != "ProductRenamed" {
		t.Errorf("dry run %+v", dry)
	}
	var dryCreate productOut
	ok(t, gql(t, a, createProductM, map[string]any{"sku": "DRY-1", "n": "Dry", "p": "1.00", "s": 1, "dry": true}), "createProduct", &dryCreate)
	if !dryCreate.DryRun || dryCreate.Position != "" {
		t.Errorf("dry create %+v", dryCreate)
	}
	ok(t, gql(t, a, priceProductM, map[string]any{"id": id, "p": "24.50"}), "changeProductPrice", &p)
	wantRule(t, "a zero price change", gql(t, a, priceProductM, map[string]any{"id": id, "p": "0"}), "product-price-valid")
	ok(t, gql(t, a, restockProductM, map[string]any{"id": id, "q": 10, "v": 3}), "restockProduct", &p)
	if p.Product.Stock != 15 || p.Product.Price != "24.50" || p.Product.Version != 4 {
		t.Errorf("after restock %+v", p.Product)
	}
	wantRule(t, "a restock of 0", gql(t, a, restockProductM, map[string]any{"id": id, "q": 0}), "quantity-positive")
	wantRule(t, "a restock past 10^9", gql(t, a, restockProductM, map[string]any{"id": id, "q": 999_999_990}), "stock-valid")
	wantRule(t, "a rename to nothing", gql(t, a, renameProductM, map[string]any{"id": id, "n": " "}), "name-valid")
	wantCode(t, "an unknown product", gql(t, a, renameProductM, map[string]any{"id": "0190b6a4-0000-7000-8000-000000000000", "n": "X"}), "NOT_FOUND")
	wantCode(t, "a malformed id", gql(t, a, renameProductM, map[string]any{"id": "nope", "n": "X"}), "BAD_USER_INPUT")
	ok(t, gql(t, a, discontinueProdM, map[string]any{"id": id, "v": 4}), "discontinueProduct", &p)
	if p.Product.Status != "DISCONTINUED" || p.Product.Version != 5 {
		t.Errorf("discontinued %+v", p.Product)
	}
	wantRule(t, "renaming a discontinued product", gql(t, a, renameProductM, map[string]any{"id": id, "n": "Again"}), "product-active")
	wantRule(t, "restocking a discontinued product", gql(t, a, restockProductM, map[string]any{"id": id, "q": 1}), "product-active")
	wantRule(t, "discontinuing it again", gql(t, a, discontinueProdM, map[string]any{"id": id}), "product-active")

	// Its streams belong to it: appendEvents refuses them.
	for _, stream := range []string{"product-" + id, "productsku-abc"} {
		r := gql(t, a, `mutation($s: String!) { appendEvents(streamId: $s, events: [{type: "ProductRenamed", data: {name: "forged"}}]) { position } }`, map[string]any{"s": stream})
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "Product") {
			t.Errorf("appendEvents to %s: %+v", stream, r.Errors)
		}
	}

	// The read model, read your writes with consistentWith, and the list's filter.
	var other productOut
	ok(t, create("CHAIR-1", "Chair", "49.00", 2), "createProduct", &other)
	var read struct {
		Name, Status string
		Stock        int
		Version      int
	}
	ok(t, gql(t, a, `query($id: ID!, $c: String) { product(id: $id, consistentWith: $c) { name status stock version } }`, map[string]any{"id": id, "c": p.Position}), "product", &read)
	if read.Status != "DISCONTINUED" || read.Version != 5 || read.Stock != 15 {
		t.Errorf("product read with consistentWith: %+v", read)
	}
	listQ := `query($s: ProductStatus, $c: String, $t: Time, $first: Int, $after: String) { products(status: $s, consistentWith: $c, asOf: $t, first: $first, after: $after) { edges { cursor node { id sku status version } } pageInfo { hasNextPage endCursor } } }`
	type listOut struct {
		Edges []struct {
			Cursor string
			Node   struct{ ID, Sku, Status string }
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   string
		}
	}
	var active listOut
	ok(t, gql(t, a, listQ, map[string]any{"s": "ACTIVE", "c": other.Position}), "products", &active)
	if len(active.Edges) != 1 || active.Edges[0].Node.ID != other.Product.ID {
		t.Errorf("active products: %+v", active)
	}
	var page listOut
	ok(t, gql(t, a, listQ, map[string]any{"c": other.Position, "first": 1}), "products", &page)
	if len(page.Edges) != 1 || !page.PageInfo.HasNextPage || page.PageInfo.EndCursor != page.Edges[0].Cursor {
		t.Errorf("first page of products: %+v", page)
	}

	// History with changes, atVersion and asOf.
	var withHistory struct {
		History struct {
			Edges []struct {
				Node struct {
					Event struct {
						Type       string
						RecordedAt time.Time
					}
					State struct {
						Name, Price    string
						Stock, Version int
					}
					Changes []struct {
						Field         string
						Before, After json.RawMessage
					}
				}
			}
		}
	}
	ok(t, gql(t, a, `query($id: ID!) { product(id: $id) { history(first: 10) { edges { node { event { type recordedAt } state { name price stock version } changes { field before after } } } } } }`, map[string]any{"id": id}), "product", &withHistory)
	h := withHistory.History.Edges
	wantTypes := []string{"ProductCreated", "ProductRenamed", "ProductPriceChanged", "ProductRestocked", "ProductDiscontinued"}
	if len(h) != len(wantTypes) {
		t.Fatalf("history has %d entries, want %d", len(h), len(wantTypes))
	}
	for i, e := range h {
		if e.Node.Event.Type != wantTypes[i] || e.Node.State.Version != i+1 {
			t.Errorf("history[%d] = %s at version %d", i, e.Node.Event.Type, e.Node.State.Version)
		}
	}
	if c := h[0].Node.Changes; len(c) != 5 || c[0].Field != "sku" || string(c[0].After) != `"LAMP-1"` {
		t.Errorf("ProductCreated changes %+v", c)
	}
	if c := h[2].Node.Changes; len(c) != 1 || c[0].Field != "price" || string(c[0].Before) != `"19.90"` || string(c[0].After) != `"24.50"` {
		t.Errorf("ProductPriceChanged changes %+v", c)
	}
	if c := h[3].Node.Changes; len(c) != 1 || c[0].Field != "stock" || string(c[0].Before) != `5` || string(c[0].After) != `15` {
		t.Errorf("ProductRestocked changes %+v", c)
	}
	var atTwo struct {
		Name    string
		Version int
	}
	ok(t, gql(t, a, `query($id: ID!) { product(id: $id, atVersion: 2) { name version } }`, map[string]any{"id": id}), "product", &atTwo)
	if atTwo.Name != "Desk lamp, brass" || atTwo.Version != 2 {
		t.Errorf("atVersion 2: %+v", atTwo)
	}
	priced := h[2].Node.Event.RecordedAt
	var then struct {
		Price   string
		Version int
	}
	ok(t, gql(t, a, `query($id: ID!, $t: Time) { product(id: $id, asOf: $t) { price version } }`, map[string]any{"id": id, "t": priced.Format(time.RFC3339Nano)}), "product", &then)
	if then.Price != "24.50" || then.Version != 3 {
		t.Errorf("asOf the price change: %+v", then)
	}
	var asOfList listOut
	ok(t, gql(t, a, listQ, map[string]any{"t": priced.Format(time.RFC3339Nano)}), "products", &asOfList)
	if len(asOfList.Edges) != 1 || asOfList.Edges[0].Node.ID != id || asOfList.Edges[0].Node.Status != "ACTIVE" {
		t.Errorf("products as of the price change: %+v, want only the lamp, ACTIVE", asOfList)
	}
	var asOfDisc listOut
	ok(t, gql(t, a, listQ, map[string]any{"t": priced.Format(time.RFC3339Nano), "s": "DISCONTINUED"}), "products", &asOfDisc)
	if len(asOfDisc.Edges) != 0 {
		t.Errorf("discontinued products as of the price change: %+v, want none", asOfDisc)
	}

	// A rebuild of its read model gives the same rows.
	before := gql(t, a, listQ, map[string]any{"c": other.Position})
	var rebuilt struct{ Name, Status string }
	ok(t, gql(t, a, `mutation { rebuildProjection(name: "products") { name status } }`, nil), "rebuildProjection", &rebuilt)
	if rebuilt.Name != "products" || rebuilt.Status != "LIVE" {
		t.Errorf("rebuilt %+v", rebuilt)
	}
	after := gql(t, a, listQ, nil)
	if string(before.Data["products"]) != string(after.Data["products"]) || !strings.Contains(string(after.Data["products"]), id) {
		t.Errorf("products before the rebuild:\n%s\nafter:\n%s", before.Data["products"], after.Data["products"])
	}
	var projections []struct {
		Name string
		Lag  int
	}
	ok(t, gql(t, a, `{ projections { name lag } }`, nil), "projections", &projections)
	found := false
	for _, pr := range projections {
		found = found || pr.Name == "products"
	}
	if !found {
		t.Errorf("projections %+v lack products", projections)
	}
}

// Two writers race to create products with one SKU: exactly one wins, and the other is told
// the SKU is taken.
func TestProductSKUIsUniqueUnderConcurrency(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	const writers = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		won   int
		rules = map[string]int{}
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := gql(t, srv.addr, createProductM, map[string]any{"sku": "RACE-1", "n": fmt.Sprintf("Racer %d", i), "p": "1.00", "s": 1})
			mu.Lock()
			defer mu.Unlock()
			if len(r.Errors) == 0 {
				won++
			} else {
				rules[r.rule()]++
			}
		}()
	}
	wg.Wait()
	if won != 1 || rules["sku-unique"] != writers-1 {
		t.Fatalf("%d creates won, refusals by rule %v; want 1 and %d sku-unique", won, rules, writers-1)
	}
}

// The product subscription pushes the state now and after each event, over both subprotocols.
func TestProductSubscription(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	var p productOut
	ok(t, gql(t, a, createProductM, map[string]any{"sku": "SUB-1", "n": "Sub", "p": "2.00", "s": 1}), "createProduct", &p)
	for i, proto := range []string{wsclient.TransportWS, wsclient.GraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			c, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", proto, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			if err := c.Subscribe("p", `subscription($id: ID!) { product(id: $id) { stock version } }`, map[string]any{"id": p.Product.ID}); err != nil {
				t.Fatal(err)
			}
			next := func() string {
				t.Helper()
				r, err := c.Next(20 * time.Second)
				if err != nil || len(r.Errors) > 0 && string(r.Errors) != "null" {
					t.Fatalf("next: %v %s", err, r.Errors)
				}
				return string(r.Data)
			}
			if got, want := next(), fmt.Sprintf(`{"product":{"stock":%d,"version":%d}}`, 1+i, 1+i); got != want {
				t.Fatalf("first state %s, want %s", got, want)
			}
			ok(t, gql(t, a, restockProductM, map[string]any{"id": p.Product.ID, "q": 1}), "restockProduct", &struct{}{})
			if got, want := next(), fmt.Sprintf(`{"product":{"stock":%d,"version":%d}}`, 2+i, 2+i); got != want {
				t.Fatalf("after a restock %s, want %s", got, want)
			}
		})
	}
}
