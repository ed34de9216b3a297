package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/domain/order"
	cmdhandler "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// startServeOn runs `strata serve` on the database at url; the test's end stops it.
func startServeOn(t *testing.T, url string, extra ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{addr: freeAddr(t), stderr: &syncBuffer{}, cancel: cancel, result: make(chan error, 1)}
	args := append([]string{"serve", "--addr", r.addr, "--consistency-timeout", "20s"}, extra...)
	go func() {
		r.result <- Run(ctx, args, &syncBuffer{}, r.stderr, envOf(map[string]string{"DATABASE_URL": url}))
	}()
	t.Cleanup(func() { _ = r.stop(t) })
	r.waitReady(t)
	return r
}

type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// code is the extensions.code of the only error, "" when there is none.
func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (r gqlResponse) rule() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["rule"].(string)
	return c
}

// gql posts a GraphQL request to the server over real HTTP.
func gql(t *testing.T, addr, query string, vars map[string]any) gqlResponse {
	t.Helper()
	_, r := gqlAs(t, addr, "", query, vars)
	return r
}

// gqlAs posts a GraphQL request with a bearer token ("" for none) and returns the HTTP status
// with the response.
func gqlAs(t *testing.T, addr, token, query string, vars map[string]any) (int, gqlResponse) {
	t.Helper()
	return gqlVia(t, testHTTP, addr, token, query, vars)
}

// gqlVia is gqlAs through client.
func gqlVia(t *testing.T, client *http.Client, addr, token, query string, vars map[string]any) (int, gqlResponse) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Error(err)
		return 0, gqlResponse{}
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+"/query", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, gqlResponse{}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0, gqlResponse{}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
		return resp.StatusCode, gqlResponse{}
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Errorf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, r
}

// ok fails the test when r has errors, and decodes field into out.
func ok(t *testing.T, r gqlResponse, field string, out any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data[field], out); err != nil {
		t.Fatalf("decode %s (%s): %v", field, r.Data[field], err)
	}
}

// wantRule fails the test unless r is one INVARIANT_VIOLATION error with this rule.
func wantRule(t *testing.T, what string, r gqlResponse, rule string) {
	t.Helper()
	if r.code() != "INVARIANT_VIOLATION" || r.rule() != rule {
		t.Errorf("%s: errors %+v, want INVARIANT_VIOLATION %s", what, r.Errors, rule)
	}
}

func wantCode(t *testing.T, what string, r gqlResponse, code string) {
	t.Helper()
	if r.code() != code {
		t.Errorf("%s: errors %+v, want %s", what, r.Errors, code)
	}
}

type userOut struct {
	User struct {
		ID, Name, Email, Status string
		Version                 int
	}
	Position string
}

type orderOut struct {
	Order struct {
		ID, Status, Total string
		Version           int
		Customer          struct{ Name string }
	}
	Position string
}

const (
	registerM = `mutation($n: String!, $e: String!) { registerUser(name: $n, email: $e) { user { id name email status version } position } }`
	createM   = `mutation($c: ID!, $items: [OrderItemInput!]!) { createOrder(customerId: $c, items: $items) { order { id status total version customer { name } } position } }`
	payM      = `mutation($id: ID!, $a: Money!, $v: Int) { payOrder(id: $id, amount: $a, expectedVersion: $v) { order { id status total version } position } }`
	shipM     = `mutation($id: ID!) { shipOrder(id: $id, carrier: "DHL", trackingNumber: "JD0001") { order { id status version } position } }`
	cancelM   = `mutation($id: ID!, $r: String!) { cancelOrder(id: $id, reason: $r) { order { id status version } position } }`
)

func items(sku string, qty int, price any) []any {
	return []any{map[string]any{"sku": sku, "quantity": qty, "unitPrice": price}}
}

// The seed domain end to end over HTTP, against the running server and real PostgreSQL.
func TestEndToEnd(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	a := srv.addr

	// Users, and the email rules.
	var ada userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada Lovelace", "e": "ada@example.com"}), "registerUser", &ada)
	if ada.User.Status != "ACTIVE" || ada.User.Version != 1 || ada.Position == "" {
		t.Fatalf("registered %+v", ada)
	}
	wantRule(t, "same email, other case", gql(t, a, registerM, map[string]any{"n": "Eve", "e": "ADA@example.com"}), "email-unique")
	wantRule(t, "invalid email", gql(t, a, registerM, map[string]any{"n": "Eve", "e": "not-an-email"}), "email-valid")
	wantRule(t, "empty name", gql(t, a, registerM, map[string]any{"n": "  ", "e": "eve@example.com"}), "name-valid")

	// Read your own write.
	r := gql(t, a, `query($id: ID!, $p: String) { user(id: $id, consistentWith: $p) { name email version } }`, map[string]any{"id": ada.User.ID, "p": ada.Position})
	var u struct{ Name, Email string }
	ok(t, r, "user", &u)
	if u.Name != "Ada Lovelace" || u.Email != "ada@example.com" {
		t.Errorf("user after consistentWith: %+v", u)
	}

	// Orders, and their rules.
	var o1 orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": []any{
		map[string]any{"sku": "BOOK", "quantity": 2, "unitPrice": "9.99"},
		map[string]any{"sku": "PEN", "quantity": 1, "unitPrice": "0.5"},
	}}), "createOrder", &o1)
	if o1.Order.Status != "PENDING" || o1.Order.Total != "20.48" || o1.Order.Customer.Name != "Ada Lovelace" || o1.Order.Version != 1 {
		t.Fatalf("created %+v", o1)
	}
	wantRule(t, "no items", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": []any{}}), "items-present")
	wantRule(t, "zero quantity", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 0, "1.00")}), "quantity-positive")
	wantRule(t, "blank sku", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items(" ", 1, "1.00")}), "sku-valid")
	wantRule(t, "total too large", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 1000000, "10000000000000")}), "total-bounded")
	wantCode(t, "negative price", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 1, "-1.00")}), "BAD_USER_INPUT")
	// user-new, order-new and price-valid cannot be reached over the API: the server makes the
	// ids, and the Money scalar refuses what price-valid would (domain tests cover all three).
	wantRule(t, "unknown customer", gql(t, a, createM, map[string]any{"c": "0190b6a4-0000-7000-8000-000000000000", "items": items("A", 1, "1.00")}), "customer-exists")
	wantCode(t, "three fraction digits", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 1, "9.999")}), "BAD_USER_INPUT")
	wantCode(t, "money as a float", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 1, 9.99)}), "BAD_USER_INPUT")
	wantCode(t, "customer id not a uuid", gql(t, a, createM, map[string]any{"c": "ada", "items": items("A", 1, "1")}), "BAD_USER_INPUT")
	wantRule(t, "wrong amount", gql(t, a, payM, map[string]any{"id": o1.Order.ID, "a": "20.47"}), "amount-equals-total")
	wantRule(t, "ship before paying", gql(t, a, shipM, map[string]any{"id": o1.Order.ID}), "order-paid")
	wantCode(t, "pay a missing order", gql(t, a, payM, map[string]any{"id": "0190b6a4-0000-7000-8000-000000000000", "a": "1"}), "NOT_FOUND")

	// 50 payments at once with the version the client saw: exactly one wins.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      int
		conflicts int
	)
	for range 50 {
		wg.Go(func() {
			r := gql(t, a, payM, map[string]any{"id": o1.Order.ID, "a": "20.48", "v": 1})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case len(r.Errors) == 0:
				wins++
			case r.code() == "WRONG_EXPECTED_VERSION" && r.Errors[0].Extensions["actualVersion"] == float64(2):
				conflicts++
			default:
				t.Errorf("payment: %+v", r.Errors)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 49 {
		t.Fatalf("%d payments succeeded and %d conflicted, want 1 and 49", wins, conflicts)
	}
	wantRule(t, "pay twice", gql(t, a, payM, map[string]any{"id": o1.Order.ID, "a": "20.48"}), "order-pending")
	wantRule(t, "ship without a carrier", gql(t, a, `mutation($id: ID!) { shipOrder(id: $id, carrier: "", trackingNumber: "X1") { position } }`, map[string]any{"id": o1.Order.ID}), "carrier-valid")
	wantRule(t, "ship without a tracking number", gql(t, a, `mutation($id: ID!) { shipOrder(id: $id, carrier: "DHL", trackingNumber: " ") { position } }`, map[string]any{"id": o1.Order.ID}), "trackingNumber-valid")
	var shipped orderOut
	ok(t, gql(t, a, shipM, map[string]any{"id": o1.Order.ID}), "shipOrder", &shipped)
	if shipped.Order.Status != "SHIPPED" || shipped.Order.Version != 3 {
		t.Errorf("shipped %+v", shipped)
	}
	wantRule(t, "cancel a shipped order", gql(t, a, cancelM, map[string]any{"id": o1.Order.ID, "r": "late"}), "order-not-shipped")

	var o2, cancelled orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("MUG", 3, "4")}), "createOrder", &o2)
	wantRule(t, "cancel without a reason", gql(t, a, cancelM, map[string]any{"id": o2.Order.ID, "r": ""}), "reason-valid")
	ok(t, gql(t, a, cancelM, map[string]any{"id": o2.Order.ID, "r": "changed my mind"}), "cancelOrder", &cancelled)
	if cancelled.Order.Status != "CANCELLED" {
		t.Errorf("cancelled %+v", cancelled)
	}
	wantRule(t, "cancel twice", gql(t, a, cancelM, map[string]any{"id": o2.Order.ID, "r": "again"}), "order-not-cancelled")
	wantRule(t, "pay a cancelled order", gql(t, a, payM, map[string]any{"id": o2.Order.ID, "a": "12.00"}), "order-pending")

	// A stale expectedVersion on a user; deactivation frees the address.
	wantCode(t, "stale version", gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "Ada L.", expectedVersion: 7) { position } }`, map[string]any{"id": ada.User.ID}), "WRONG_EXPECTED_VERSION")
	var deact userOut
	ok(t, gql(t, a, `mutation($id: ID!) { deactivateUser(id: $id, expectedVersion: 1) { user { status version } position } }`, map[string]any{"id": ada.User.ID}), "deactivateUser", &deact)
	if deact.User.Status != "DEACTIVATED" || deact.User.Version != 2 {
		t.Errorf("deactivated %+v", deact)
	}
	wantRule(t, "order for a deactivated customer", gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 1, "1")}), "customer-active")
	wantRule(t, "rename a deactivated user", gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "X") { position } }`, map[string]any{"id": ada.User.ID}), "user-active")
	var bob userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Bob", "e": "Ada@Example.com"}), "registerUser", &bob)

	// The raw event-store operations see the domain's streams but may not write them.
	wantCode(t, "append to an order stream", gql(t, a, `mutation($s: String!) { appendEvents(streamId: $s, events: [{type: "OrderPaid", data: {}}]) { position } }`, map[string]any{"s": "order-" + o1.Order.ID}), "BAD_USER_INPUT")
	var stream struct{ Version int }
	ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { version } }`, map[string]any{"s": "order-" + o1.Order.ID}), "stream", &stream)
	if stream.Version != 3 {
		t.Errorf("order stream at version %d, want 3", stream.Version)
	}

	// The read side, consistent with the last write.
	r = gql(t, a, `query($id: ID!, $c: ID!, $p: String) {
		order(id: $id, consistentWith: $p) { status total customer { name status orders { edges { node { id status } } } } }
		orders(customerId: $c, consistentWith: $p) { edges { node { id status } } }
		users(status: ACTIVE, emailContains: "EXAMPLE", consistentWith: $p) { edges { node { name } } }
	}`, map[string]any{"id": o2.Order.ID, "c": ada.User.ID, "p": bob.Position})
	if len(r.Errors) > 0 {
		t.Fatalf("read side: %+v", r.Errors)
	}
	want := map[string]string{
		"order":  fmt.Sprintf(`{"status":"CANCELLED","total":"12.00","customer":{"name":"Ada Lovelace","status":"DEACTIVATED","orders":{"edges":[{"node":{"id":"%s","status":"SHIPPED"}},{"node":{"id":"%s","status":"CANCELLED"}}]}}}`, o1.Order.ID, o2.Order.ID),
		"orders": fmt.Sprintf(`{"edges":[{"node":{"id":"%s","status":"SHIPPED"}},{"node":{"id":"%s","status":"CANCELLED"}}]}`, o1.Order.ID, o2.Order.ID),
		"users":  `{"edges":[{"node":{"name":"Bob"}}]}`,
	}
	for k, v := range want {
		if string(r.Data[k]) != v {
			t.Errorf("%s = %s, want %s", k, r.Data[k], v)
		}
	}

	// allEvents paged while writers run: every acknowledged write is seen exactly once.
	written := map[string]bool{}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var res userOut
				r := gql(t, a, registerM, map[string]any{"n": "W", "e": fmt.Sprintf("w%d-%d@example.com", w, i)})
				if len(r.Errors) > 0 || json.Unmarshal(r.Data["registerUser"], &res) != nil {
					t.Errorf("writer: %+v", r.Errors)
					return
				}
				mu.Lock()
				written[res.Position] = true
				mu.Unlock()
			}
		})
	}
	seen := map[string]int{}
	var order []string
	after := ""
	page := func() bool {
		var c struct {
			Edges    []struct{ Cursor string }
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
		ok(t, gql(t, a, `query($a: String) { allEvents(first: 7, after: $a) { edges { cursor } pageInfo { hasNextPage endCursor } } }`, map[string]any{"a": after}), "allEvents", &c)
		for _, e := range c.Edges {
			seen[e.Cursor]++
			order = append(order, e.Cursor)
		}
		after = c.PageInfo.EndCursor
		return c.PageInfo.HasNextPage
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		page()
	}
	close(stop)
	writers.Wait()
	for start := time.Now(); ; {
		if !page() {
			mu.Lock()
			missing := 0
			for p := range written {
				if seen[p] == 0 {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("%d acknowledged events never showed up in allEvents", missing)
			}
		}
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("position %s seen %d times", p, n)
		}
	}
	if !sort.StringsAreSorted(order) || len(written) < 4 {
		t.Errorf("allEvents out of order, or writers wrote too little (%d)", len(written))
	}

	// Rebuilding a projection gives the same answers.
	const listAll = `query($p: String) { users(first: 1000, consistentWith: $p) { edges { node { id name email status version } } } }`
	mu.Lock()
	var last string
	for p := range written {
		last = max(last, p)
	}
	mu.Unlock()
	before := gql(t, a, listAll, map[string]any{"p": last})
	var rebuilt struct{ Name, Status string }
	ok(t, gql(t, a, `mutation { rebuildProjection(name: "users") { name status } }`, nil), "rebuildProjection", &rebuilt)
	if rebuilt.Name != "users" || rebuilt.Status != "LIVE" {
		t.Errorf("rebuilt %+v", rebuilt)
	}
	afterRebuild := gql(t, a, listAll, map[string]any{"p": last})
	if string(before.Data["users"]) != string(afterRebuild.Data["users"]) || len(before.Data["users"]) < 100 {
		t.Errorf("users before the rebuild:\n%s\nafter:\n%s", before.Data["users"], afterRebuild.Data["users"])
	}
	var projections []struct {
		Name, Status string
		Lag          int
	}
	ok(t, gql(t, a, `{ projections { name status lag } }`, nil), "projections", &projections)
	var names []string
	for _, p := range projections {
		names = append(names, p.Name)
	}
	if want := readModelNames(); !slices.Equal(names, want) || !slices.Equal(names[:3], []string{"users", "orders", "products"}) {
		t.Errorf("projections %+v, want %v", projections, want)
	}
}

// A server stopped while its projectors are catching up, and started again, leaves read models
// that match a replay of every aggregate: nothing lost, nothing applied twice.
func TestServerStoppedMidProjectionResumes(t *testing.T) {
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 10)
	store := eventstore.New(pool, eventstore.Options{})
	h := cmdhandler.New(store, cmdhandler.Options{})
	ctx := context.Background()
	var ids []string
	for i := range 300 {
		u, err := h.RegisterUser(ctx, "U", fmt.Sprintf("u%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		o, err := h.CreateOrder(ctx, u.User.ID, []order.Item{{SKU: "A", Quantity: 1, UnitPrice: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.PayOrder(ctx, o.Order.ID, 100, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.Order.ID)
	}
	stopped := 0
	for attempt := 0; attempt < 5; attempt++ {
		srv := startServeOn(t, url)
		time.Sleep(time.Duration(attempt*20) * time.Millisecond)
		if err := srv.stop(t); err != nil {
			t.Fatalf("serve: %v", err)
		}
		var pos string
		if err := pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = 'orders'`).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		var lag int64
		if p, err := eventstore.ParsePosition(pos); err == nil {
			lag, _ = store.CountAfter(ctx, p, "order", 1_000_000)
		}
		if lag > 0 {
			stopped++
		}
	}
	if stopped == 0 {
		t.Log("every server run caught up before it was stopped; the restart below still checks the result")
	}
	srv := startServeOn(t, url)
	r := gql(t, srv.addr, `query($p: String) { orders(first: 1000, consistentWith: $p) { edges { node { id status version } } } }`, map[string]any{"p": mustLastPosition(t, store)})
	var c struct {
		Edges []struct {
			Node struct {
				ID, Status string
				Version    int
			}
		}
	}
	ok(t, r, "orders", &c)
	if len(c.Edges) != len(ids) {
		t.Fatalf("%d orders in the read model, want %d", len(c.Edges), len(ids))
	}
	for _, e := range c.Edges {
		if e.Node.Status != "PAID" || e.Node.Version != 2 {
			t.Errorf("order %+v, want PAID at version 2", e.Node)
		}
	}
	var uc struct {
		Edges []struct {
			Node struct {
				Status  string
				Version int
			}
		}
	}
	ok(t, gql(t, srv.addr, `query($p: String) { users(first: 1000, consistentWith: $p) { edges { node { status version } } } }`, map[string]any{"p": mustLastPosition(t, store)}), "users", &uc)
	if len(uc.Edges) != len(ids) {
		t.Fatalf("%d users in the read model, want %d", len(uc.Edges), len(ids))
	}
	for _, e := range uc.Edges {
		if e.Node.Status != "ACTIVE" || e.Node.Version != 1 {
			t.Errorf("user %+v, want ACTIVE at version 1", e.Node)
		}
	}
}

func mustLastPosition(t *testing.T, store *eventstore.Store) string {
	t.Helper()
	var last eventstore.Position
	for {
		events, err := store.ReadAll(context.Background(), eventstore.ReadAllOptions{After: last, Max: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 {
			return last.String()
		}
		last = events[len(events)-1].Position
	}
}

// Dry runs check and decide against the current state, return the events and the resulting
// state, and write nothing.
func TestDryRunsWriteNothing(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	var ada userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &ada)
	var o orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 2, "5.00")}), "createOrder", &o)
	countAll := func() int { return len(positionsAfter(t, a, "", "")) }
	before := len(positionsAtLeast(t, a, "", "", 2)) // UserRegistered, OrderCreated

	type dry struct {
		Position string
		DryRun   bool
		Events   []struct {
			StreamID string
			Version  int
			Type     string
			Data     json.RawMessage
		}
	}
	var reg struct {
		dry
		User struct{ ID, Email, Status string }
	}
	ok(t, gql(t, a, `mutation { registerUser(name: "Bob", email: "bob@example.com", dryRun: true) {
		user { id email status } position dryRun events { streamId version type data } } }`, nil), "registerUser", &reg)
	if !reg.DryRun || reg.Position != "" || reg.User.Status != "ACTIVE" || len(reg.Events) != 1 ||
		reg.Events[0].StreamID != "user-"+reg.User.ID || reg.Events[0].Type != "UserRegistered" || reg.Events[0].Version != 1 {
		t.Errorf("dry registration: %+v", reg)
	}
	var pay struct {
		dry
		Order struct {
			Status  string
			Version int
		}
	}
	ok(t, gql(t, a, `mutation($id: ID!) { payOrder(id: $id, amount: "10.00", expectedVersion: 1, dryRun: true) {
		order { status version } position dryRun events { streamId version type data } } }`, map[string]any{"id": o.Order.ID}), "payOrder", &pay)
	if !pay.DryRun || pay.Order.Status != "PAID" || pay.Order.Version != 2 || len(pay.Events) != 1 ||
		pay.Events[0].Type != "OrderPaid" || pay.Events[0].Version != 2 || string(pay.Events[0].Data) != `{"amount":1000}` {
		t.Errorf("dry payment: %+v", pay)
	}
	// Rules still apply in a dry run.
	wantRule(t, "dry payment of the wrong amount", gql(t, a, `mutation($id: ID!) { payOrder(id: $id, amount: "9.99", dryRun: true) { dryRun } }`, map[string]any{"id": o.Order.ID}), "amount-equals-total")
	wantRule(t, "dry registration of a taken email", gql(t, a, `mutation { registerUser(name: "Eve", email: "ada@example.com", dryRun: true) { dryRun } }`, nil), "email-unique")

	if after := countAll(); after != before {
		t.Errorf("dry runs wrote %d events", after-before)
	}
	var st struct{ Version int }
	ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { version } }`, map[string]any{"s": "order-" + o.Order.ID}), "stream", &st)
	if st.Version != 1 {
		t.Errorf("order stream at version %d after a dry payment, want 1", st.Version)
	}
	// The address a dry run "registered" is still free, and the real payment still works at
	// the version the dry run saw.
	ok(t, gql(t, a, registerM, map[string]any{"n": "Bob", "e": "bob@example.com"}), "registerUser", &reg)
	var real orderOut
	ok(t, gql(t, a, payM, map[string]any{"id": o.Order.ID, "a": "10.00", "v": 1}), "payOrder", &real)
	if real.Order.Status != "PAID" || real.Order.Version != 2 {
		t.Errorf("real payment after the dry one: %+v", real)
	}
	var realEvents struct {
		Position string
		DryRun   bool
		Events   []struct{ Type string }
	}
	ok(t, gql(t, a, `mutation($id: ID!) { shipOrder(id: $id, carrier: "DHL", trackingNumber: "T") { position dryRun events { type } } }`, map[string]any{"id": o.Order.ID}), "shipOrder", &realEvents)
	if realEvents.DryRun || realEvents.Position == "" || len(realEvents.Events) != 1 || realEvents.Events[0].Type != "OrderShipped" {
		t.Errorf("a real command's result: %+v", realEvents)
	}
}

// readModelNames are the projections a server runs: every registered aggregate's read model, in
// the registry's order, then the order statistics.
func readModelNames() []string {
	var names []string
	for _, p := range projection.Default() {
		names = append(names, p.Name())
	}
	return names
}
