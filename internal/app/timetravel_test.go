package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

type historyEntry struct {
	Event struct {
		Type       string
		Version    int
		RecordedAt time.Time
	}
	State struct {
		Status  string
		Version int
	}
	Changes []struct {
		Field  string
		Before json.RawMessage
		After  json.RawMessage
	}
}

// An order at a version or a time is a replay of its events; its history shows each event with
// the state after it and what changed.
func TestOrderAtVersionAndTimeAndItsHistory(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	var u userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &u)
	var o orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": u.User.ID, "items": items("A", 2, "5.00")}), "createOrder", &o)
	ok(t, gql(t, a, payM, map[string]any{"id": o.Order.ID, "a": "10.00"}), "payOrder", &o)
	ok(t, gql(t, a, shipM, map[string]any{"id": o.Order.ID}), "shipOrder", &o)

	var h struct {
		Edges []struct {
			Cursor string
			Node   historyEntry
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   string
		}
	}
	const historyQ = `query($id: ID!, $first: Int, $after: String) { order(id: $id, atVersion: 3) { history(first: $first, after: $after) {
		edges { cursor node { event { type version recordedAt } state { status version } changes { field before after } } }
		pageInfo { hasNextPage endCursor } } } }`
	r := gql(t, a, historyQ, map[string]any{"id": o.Order.ID, "first": 2})
	var wrap struct{ History json.RawMessage }
	ok(t, r, "order", &wrap)
	if err := json.Unmarshal(wrap.History, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Edges) != 2 || !h.PageInfo.HasNextPage || h.Edges[0].Node.Event.Type != "OrderCreated" || h.Edges[1].Node.State.Status != "PAID" {
		t.Fatalf("first page of history: %+v", h)
	}
	created, paidEntry := h.Edges[0].Node, h.Edges[1].Node
	if len(created.Changes) != 4 || created.Changes[0].Field != "status" || (created.Changes[0].Before != nil && string(created.Changes[0].Before) != "null") || string(created.Changes[0].After) != `"PENDING"` {
		t.Errorf("OrderCreated changes: %+v", created.Changes)
	}
	if len(paidEntry.Changes) != 1 || paidEntry.Changes[0].Field != "status" || string(paidEntry.Changes[0].Before) != `"PENDING"` || string(paidEntry.Changes[0].After) != `"PAID"` {
		t.Errorf("OrderPaid changes: %+v", paidEntry.Changes)
	}
	r = gql(t, a, historyQ, map[string]any{"id": o.Order.ID, "first": 2, "after": h.PageInfo.EndCursor})
	ok(t, r, "order", &wrap)
	if err := json.Unmarshal(wrap.History, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Edges) != 1 || h.PageInfo.HasNextPage || h.Edges[0].Node.Event.Type != "OrderShipped" {
		t.Fatalf("second page of history: %+v", h)
	}
	var fields []string
	for _, c := range h.Edges[0].Node.Changes {
		fields = append(fields, c.Field)
	}
	if len(fields) != 3 || fields[0] != "status" || fields[1] != "carrier" || fields[2] != "trackingNumber" {
		t.Errorf("OrderShipped changed %v", fields)
	}

	at := func(vars map[string]any) gqlResponse {
		return gql(t, a, `query($id: ID!, $v: Int, $t: Time) { order(id: $id, atVersion: $v, asOf: $t) { status version } }`, vars)
	}
	for v, want := range map[int]string{1: `{"status":"PENDING","version":1}`, 2: `{"status":"PAID","version":2}`, 3: `{"status":"SHIPPED","version":3}`, 4: `null`} {
		if got := at(map[string]any{"id": o.Order.ID, "v": v}); len(got.Errors) > 0 || string(got.Data["order"]) != want {
			t.Errorf("atVersion %d: %s %+v, want %s", v, got.Data["order"], got.Errors, want)
		}
	}
	paidAt, createdAt := paidEntry.Event.RecordedAt, created.Event.RecordedAt
	var listed struct {
		Edges []struct{ Node struct{ ID, Status string } }
	}
	ok(t, gql(t, a, `query($t: Time) { orders(asOf: $t) { edges { node { id status } } } }`, map[string]any{"t": paidAt.Format(time.RFC3339Nano)}), "orders", &listed)
	if len(listed.Edges) != 1 || listed.Edges[0].Node.ID != o.Order.ID || listed.Edges[0].Node.Status != "PAID" {
		t.Errorf("orders as of the payment: %+v, want the order, PAID", listed)
	}
	for name, tc := range map[string]struct {
		t    time.Time
		want string
	}{
		"before it existed":  {createdAt.Add(-time.Microsecond), `null`},
		"as it was created":  {createdAt, `{"status":"PENDING","version":1}`},
		"as it was paid":     {paidAt, `{"status":"PAID","version":2}`},
		"after the shipment": {time.Now(), `{"status":"SHIPPED","version":3}`},
	} {
		if got := at(map[string]any{"id": o.Order.ID, "t": tc.t.Format(time.RFC3339Nano)}); len(got.Errors) > 0 || string(got.Data["order"]) != tc.want {
			t.Errorf("asOf %s: %s %+v, want %s", name, got.Data["order"], got.Errors, tc.want)
		}
	}
	wantCode(t, "asOf and atVersion", at(map[string]any{"id": o.Order.ID, "v": 1, "t": paidAt.Format(time.RFC3339Nano)}), "BAD_USER_INPUT")
	wantCode(t, "asOf in the future", at(map[string]any{"id": o.Order.ID, "t": time.Now().Add(time.Hour).Format(time.RFC3339Nano)}), "BAD_USER_INPUT")
}

// asOf is a prefix of the global order. A transaction that began before T but wrote after one
// that began after T is not in the log as of T, though its events carry a time before T.
func TestAsOfIsAPrefixOfTheGlobalOrder(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	a := srv.addr
	var x, y userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "X", "e": "x@example.com"}), "registerUser", &x)
	ok(t, gql(t, a, registerM, map[string]any{"n": "Y", "e": "y@example.com"}), "registerUser", &y)

	// Transaction A begins (its events will carry this start time), then waits.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var startA time.Time
	if err := tx.QueryRow(t.Context(), `SELECT now()`).Scan(&startA); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	// B begins later, renames X and commits first.
	var renamedX struct {
		User     struct{ Name string }
		Position string
	}
	ok(t, gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "X2") { user { name } position } }`, map[string]any{"id": x.User.ID}), "renameUser", &renamedX)
	// A now renames Y, as an append would, and commits after B.
	if _, err := tx.Exec(t.Context(), `UPDATE streams SET version = 2 WHERE stream_id = $1`, "user-"+y.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata)
VALUES ($1, $2, 2, 'UserRenamed', 1, '{"oldName": "Y", "newName": "Y2"}', '{}')`, uuid.New(), "user-"+y.User.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	var events struct {
		Edges []struct {
			Node struct {
				StreamID   string
				RecordedAt time.Time
			}
		}
	}
	// allEvents shows the renames once every older transaction in the cluster has ended.
	waitUntil(t, "both renames in allEvents", 15*time.Second, func() bool {
		ok(t, gql(t, a, `{ allEvents(types: ["UserRenamed"]) { edges { node { streamId recordedAt } } } }`, nil), "allEvents", &events)
		return len(events.Edges) >= 2
	})
	if len(events.Edges) != 2 || events.Edges[0].Node.StreamID != "user-"+x.User.ID || !events.Edges[1].Node.RecordedAt.Before(events.Edges[0].Node.RecordedAt) {
		t.Fatalf("the global order should hold B's rename first, then A's with an earlier time: %+v", events)
	}
	startB := events.Edges[0].Node.RecordedAt
	between := startA.Add(startB.Sub(startA) / 2)

	name := func(id string, t0 time.Time) string {
		t.Helper()
		var got struct{ Name string }
		ok(t, gql(t, a, `query($id: ID!, $t: Time) { user(id: $id, asOf: $t) { name } }`, map[string]any{"id": id, "t": t0.Format(time.RFC3339Nano)}), "user", &got)
		return got.Name
	}
	// As of a moment between A's start and B's, neither rename is in the log: B's began after
	// it, and A's follows B's in the global order.
	if got := name(y.User.ID, between); got != "Y" {
		t.Errorf("Y as of between the two starts: %q, want Y (A's rename follows B's in the log)", got)
	}
	if got := name(x.User.ID, between); got != "X" {
		t.Errorf("X as of between the two starts: %q, want X", got)
	}
	// As of B's start both are in.
	if got := name(y.User.ID, startB); got != "Y2" {
		t.Errorf("Y as of B's start: %q, want Y2", got)
	}
	if got := name(x.User.ID, startB); got != "X2" {
		t.Errorf("X as of B's start: %q, want X2", got)
	}
	// The list as of a time is built from the same prefix, by the live projection's code: it
	// agrees with the single users.
	names := func(t0 time.Time) map[string]string {
		t.Helper()
		var c struct {
			Edges []struct{ Node struct{ ID, Name string } }
		}
		ok(t, gql(t, a, `query($t: Time) { users(asOf: $t) { edges { node { id name } } } }`, map[string]any{"t": t0.Format(time.RFC3339Nano)}), "users", &c)
		out := map[string]string{}
		for _, e := range c.Edges {
			out[e.Node.ID] = e.Node.Name
		}
		return out
	}
	for label, t0 := range map[string]time.Time{"between": between, "B's start": startB} {
		list := names(t0)
		for _, id := range []string{x.User.ID, y.User.ID} {
			if list[id] != name(id, t0) {
				t.Errorf("as of %s: the list says %q, the user says %q", label, list[id], name(id, t0))
			}
		}
	}
	if got := names(startA.Add(-time.Hour)); len(got) != 0 {
		t.Errorf("users as of an hour before: %v, want none", got)
	}
}

// The replay behind a list as of a time is bounded.
func TestListsAsOfAreBounded(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t), "--max-replay-events", "2")
	a := srv.addr
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		ok(t, gql(t, a, registerM, map[string]any{"n": "N", "e": e}), "registerUser", &userOut{})
	}
	r := gql(t, a, `query($t: Time) { users(asOf: $t) { edges { node { id } } } }`, map[string]any{"t": time.Now().Format(time.RFC3339Nano)})
	wantCode(t, "users as of now with 3 events and a bound of 2", r, "BAD_USER_INPUT")
	if len(r.Errors) > 0 && !strings.Contains(r.Errors[0].Message, "--max-replay-events") {
		t.Errorf("message %q does not say which setting bounds it", r.Errors[0].Message)
	}
}
