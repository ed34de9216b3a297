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
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// Old payloads, written by raw SQL as older code would have, are read in their current shape
// through every path: aggregate loads (commands), projections and their rebuild, the event-store
// operations (with the stored payload alongside) and subscription catch-up. An event type no
// code knows is shown by the event-store operations and ignored by the rest.
func TestOldPayloadsAreUpcastOnEveryPath(t *testing.T) {
	url := dbtest.URL(t)
	uid, oid := uuid.NewString(), uuid.NewString()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	insert := func(stream string, version int, typ string, schemaVersion int, data string) {
		t.Helper()
		_, err := conn.Exec(t.Context(), `INSERT INTO streams (stream_id, version) VALUES ($1, $2)
ON CONFLICT (stream_id) DO UPDATE SET version = $2`, stream, version)
		if err == nil {
			_, err = conn.Exec(t.Context(), `INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata)
VALUES ($1, $2, $3, $4, $5, $6, '{}')`, uuid.New(), stream, version, typ, schemaVersion, data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	insert("user-"+uid, 1, "UserRegistered", 1, `{"userId": "`+uid+`", "name": "Old Timer", "email": "old@example.com"}`)
	insert("user-"+uid, 2, "EmailChanged", 1, `{"old_email": "old@example.com", "new_email": "new@example.com"}`)
	insert("user-"+uid, 3, "UserPreferencesSet", 1, `{"theme": "dark"}`) // no code knows this type
	insert("order-"+oid, 1, "OrderCreated", 1, `{"orderId": "`+oid+`", "customerId": "`+uid+`", "items": [{"sku": "A", "quantity": 3, "price": 9.99}], "total": 29.97}`)
	_ = conn.Close(context.Background())

	srv := startServeOn(t, url)
	a := srv.addr

	// The event-store operations: current shape in data, the stored one in raw.
	var st struct {
		Events struct {
			Edges []struct {
				Node struct {
					Type          string
					SchemaVersion int
					Data          json.RawMessage
					Position      string
					Raw           struct {
						SchemaVersion int
						Data          json.RawMessage
					}
				}
			}
		}
	}
	ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { events { edges { node { type schemaVersion data position raw { schemaVersion data } } } } } }`, map[string]any{"s": "user-" + uid}), "stream", &st)
	if len(st.Events.Edges) != 3 {
		t.Fatalf("stream: %+v", st)
	}
	changed := st.Events.Edges[1].Node
	if changed.SchemaVersion != 2 || string(changed.Data) != `{"newEmail":"new@example.com","oldEmail":"old@example.com"}` ||
		changed.Raw.SchemaVersion != 1 || !strings.Contains(string(changed.Raw.Data), `"old_email"`) {
		t.Errorf("EmailChanged as read: %+v (data %s, raw %s)", changed, changed.Data, changed.Raw.Data)
	}
	if unknown := st.Events.Edges[2].Node; unknown.Type != "UserPreferencesSet" || string(unknown.Data) != `{"theme": "dark"}` && string(unknown.Data) != `{"theme":"dark"}` {
		t.Errorf("unknown event as read: %+v", unknown)
	}
	var all struct {
		Edges []struct {
			Node struct{ Data json.RawMessage }
		}
	}
	// allEvents shows an event once every older transaction on the cluster has ended, and other
	// tests' transactions may hold it back for a moment.
	waitUntil(t, "the OrderCreated event in allEvents", 15*time.Second, func() bool {
		ok(t, gql(t, a, `{ allEvents(types: ["OrderCreated"]) { edges { node { data } } } }`, nil), "allEvents", &all)
		return len(all.Edges) > 0
	})
	if len(all.Edges) != 1 || !strings.Contains(string(all.Edges[0].Node.Data), `"unitPrice":999`) || !strings.Contains(string(all.Edges[0].Node.Data), `"total":2997`) {
		t.Errorf("OrderCreated in allEvents: %+v", all)
	}

	// Aggregate loads: the order's total is 29.97 in minor units, so paying it works; the user's
	// email is the upcast new one, and the unknown event still counts for the version.
	var paid orderOut
	ok(t, gql(t, a, payM, map[string]any{"id": oid, "a": "29.97", "v": 1}), "payOrder", &paid)
	if paid.Order.Status != "PAID" || paid.Order.Total != "29.97" {
		t.Errorf("paid %+v", paid)
	}
	var renamed struct {
		User struct {
			Email   string
			Version int
		}
		Position string
	}
	ok(t, gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "New Timer", expectedVersion: 3) { user { email version } position } }`, map[string]any{"id": uid}), "renameUser", &renamed)
	if renamed.User.Email != "new@example.com" || renamed.User.Version != 4 {
		t.Errorf("renamed %+v", renamed)
	}

	// Projections, live and rebuilt.
	check := func(when string) {
		t.Helper()
		r := gql(t, a, `query($u: ID!, $o: ID!, $p: String) {
			user(id: $u, consistentWith: $p) { name email version }
			order(id: $o, consistentWith: $p) { status total items { sku quantity unitPrice } customer { email } } }`,
			map[string]any{"u": uid, "o": oid, "p": max(paid.Position, renamed.Position)})
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", when, r.Errors)
		}
		if got := string(r.Data["user"]); got != `{"name":"New Timer","email":"new@example.com","version":4}` {
			t.Errorf("%s: user %s", when, got)
		}
		if got := string(r.Data["order"]); got != `{"status":"PAID","total":"29.97","items":[{"sku":"A","quantity":3,"unitPrice":"9.99"}],"customer":{"email":"new@example.com"}}` {
			t.Errorf("%s: order %s", when, got)
		}
	}
	check("live projections")
	for _, name := range []string{"users", "orders"} {
		var p struct{ Skipped int }
		ok(t, gql(t, a, `mutation($n: String!) { rebuildProjection(name: $n) { skipped } }`, map[string]any{"n": name}), "rebuildProjection", &p)
		if p.Skipped != 0 {
			t.Errorf("rebuilding %s skipped %d events", name, p.Skipped)
		}
	}
	check("rebuilt projections")

	// History shows the upcast payload and what it changed.
	var hist struct {
		History struct {
			Edges []struct {
				Node struct {
					Event struct {
						Type string
						Data json.RawMessage
					}
					Changes []struct {
						Field         string
						Before, After json.RawMessage
					}
				}
			}
		}
	}
	ok(t, gql(t, a, `query($u: ID!) { user(id: $u, atVersion: 3) { history { edges { node { event { type data } changes { field before after } } } } } }`, map[string]any{"u": uid}), "user", &hist)
	if len(hist.History.Edges) != 4 {
		t.Fatalf("history: %+v", hist)
	}
	he := hist.History.Edges[1].Node
	if he.Event.Type != "EmailChanged" || !strings.Contains(string(he.Event.Data), `"newEmail"`) || len(he.Changes) != 1 ||
		he.Changes[0].Field != "email" || string(he.Changes[0].Before) != `"old@example.com"` || string(he.Changes[0].After) != `"new@example.com"` {
		t.Errorf("EmailChanged in the history: %+v", he)
	}
	if unknown := hist.History.Edges[2].Node; unknown.Event.Type != "UserPreferencesSet" || len(unknown.Changes) != 0 {
		t.Errorf("the unknown event in the history: %+v", unknown)
	}

	// Subscription catch-up.
	s := subscribe(t, a, wsclient.TransportWS, map[string]any{"after": st.Events.Edges[0].Node.Position, "streamId": "user-" + uid})
	got := s.waitFor(t, 3, 20*time.Second)
	if got[0].Type != "EmailChanged" || got[1].Type != "UserPreferencesSet" || got[2].Type != "UserRenamed" {
		t.Errorf("catch-up: %+v", got)
	}
	c, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.GraphQLWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Subscribe("1", `subscription($after: String, $s: String) { events(after: $after, streamId: $s) { data schemaVersion } }`,
		map[string]any{"after": st.Events.Edges[0].Node.Position, "s": "user-" + uid}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Next(20 * time.Second)
	if err != nil || string(r.Data) != `{"events":{"data":{"newEmail":"new@example.com","oldEmail":"old@example.com"},"schemaVersion":2}}` {
		t.Errorf("catch-up payload: %s %v", r.Data, err)
	}
}
