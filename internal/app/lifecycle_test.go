package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

type edgesOut struct {
	Edges []struct {
		Node struct {
			Version  int
			Position string
			Type     string
		}
	}
}

func (e edgesOut) versions() string {
	var v []int
	for _, edge := range e.Edges {
		v = append(v, edge.Node.Version)
	}
	return fmt.Sprint(v)
}

// Stream lifecycle through the API of a running `strata serve`, and `strata scavenge`:
// deleting, recreating, truncating an aggregate, capping a stream, then scavenging exactly what
// is hidden while every position stays where it was.
func TestStreamLifecycleOverGraphQL(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url, "--scavenge-interval", "0", "--snapshot-every", "user=0")
	a := srv.addr
	appendM := `mutation($s: String!, $v: Int, $t: String!) { appendEvents(streamId: $s, expectedVersion: $v, events: [{type: $t, data: {}}]) { nextExpectedVersion position } }`
	type appended struct {
		NextExpectedVersion int
		Position            string
	}
	var last appended
	for i := range 3 {
		ok(t, gql(t, a, appendM, map[string]any{"s": "cart-1", "t": fmt.Sprintf("Added%d", i)}), "appendEvents", &last)
	}
	// The global order shows an event once every older transaction of the cluster has ended.
	allEvents := func(n int) edgesOut {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var all edgesOut
			ok(t, gql(t, a, `query { allEvents(category: "cart", first: 100) { edges { node { version position type } } } }`, nil), "allEvents", &all)
			if len(all.Edges) >= n || time.Now().After(deadline) {
				return all
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	all := allEvents(3)
	if len(all.Edges) != 3 {
		t.Fatalf("allEvents: %+v, want 3 events", all)
	}

	// Delete: the tombstone is the next event; reads and appends say the stream is deleted.
	var del struct {
		NextExpectedVersion int
		Events              []struct{ Type string }
	}
	wantCode(t, "delete at the wrong version", gql(t, a, `mutation { deleteStream(streamId: "cart-1", expectedVersion: 2) { position } }`, nil), "WRONG_EXPECTED_VERSION")
	wantCode(t, "delete of a stream without events", gql(t, a, `mutation { deleteStream(streamId: "cart-none") { position } }`, nil), "NOT_FOUND")
	ok(t, gql(t, a, `mutation { deleteStream(streamId: "cart-1", expectedVersion: 3) { nextExpectedVersion events { type } } }`, nil), "deleteStream", &del)
	if del.NextExpectedVersion != 4 || len(del.Events) != 1 || del.Events[0].Type != "$StreamDeleted" {
		t.Errorf("deleteStream = %+v", del)
	}
	var stream struct {
		Deleted bool
		Version int
	}
	ok(t, gql(t, a, `query { stream(id: "cart-1") { deleted version } }`, nil), "stream", &stream)
	if !stream.Deleted || stream.Version != 4 {
		t.Errorf("stream = %+v", stream)
	}
	r := gql(t, a, `query { stream(id: "cart-1") { events { edges { node { version } } } } }`, nil)
	wantCode(t, "read of a deleted stream", r, "STREAM_DELETED")
	if len(r.Errors) == 1 && r.Errors[0].Extensions["version"] != float64(4) {
		t.Errorf("STREAM_DELETED extensions = %v", r.Errors[0].Extensions)
	}
	wantCode(t, "append to a deleted stream", gql(t, a, appendM, map[string]any{"s": "cart-1", "t": "Added"}), "STREAM_DELETED")
	wantCode(t, "append at the tombstone's version", gql(t, a, appendM, map[string]any{"s": "cart-1", "v": 4, "t": "Added"}), "STREAM_DELETED")
	wantCode(t, "append of a tombstone", gql(t, a, appendM, map[string]any{"s": "cart-2", "t": "$StreamDeleted"}), "BAD_USER_INPUT")

	// Recreate: expectedVersion 0; versions go on after the tombstone.
	ok(t, gql(t, a, appendM, map[string]any{"s": "cart-1", "v": 0, "t": "Again"}), "appendEvents", &last)
	if last.NextExpectedVersion != 5 {
		t.Errorf("recreated at version %d, want 5", last.NextExpectedVersion)
	}
	var events struct{ Events edgesOut }
	ok(t, gql(t, a, `query { stream(id: "cart-1") { events { edges { node { version } } } } }`, nil), "stream", &events)
	if got := events.Events.versions(); got != "[5]" {
		t.Errorf("recreated stream reads %s, want [5]", got)
	}
	allAfter := allEvents(5)
	if len(allAfter.Edges) != 5 || allAfter.Edges[3].Node.Type != "$StreamDeleted" {
		t.Fatalf("allEvents after deleting and recreating: %+v", allAfter)
	}
	for i, e := range all.Edges {
		if allAfter.Edges[i].Node != e.Node {
			t.Errorf("allEvents[%d] = %+v, was %+v", i, allAfter.Edges[i].Node, e.Node)
		}
	}

	// A deleted user: its read-model row goes, its commands are refused.
	var bo userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Bo", "e": "bo@example.com"}), "registerUser", &bo)
	var boDel struct{ Position string }
	ok(t, gql(t, a, `mutation($s: String!) { deleteStream(streamId: $s) { position } }`, map[string]any{"s": "user-" + bo.User.ID}), "deleteStream", &boDel)
	r = gql(t, a, `query($id: ID!, $p: String) { user(id: $id, consistentWith: $p) { name } }`, map[string]any{"id": bo.User.ID, "p": boDel.Position})
	if len(r.Errors) > 0 || string(r.Data["user"]) != "null" {
		t.Errorf("the deleted user from the read model: %s %+v, want null", r.Data["user"], r.Errors)
	}
	wantCode(t, "rename of a deleted user", gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "Bob") { position } }`, map[string]any{"id": bo.User.ID}), "STREAM_DELETED")

	// Truncate a user before version 3: history starts there, the state is whole, commands go on.
	var ada userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &ada)
	for _, n := range []string{"Ada B", "Ada C", "Ada D"} {
		ok(t, gql(t, a, `mutation($id: ID!, $n: String!) { renameUser(id: $id, name: $n) { position } }`, map[string]any{"id": ada.User.ID, "n": n}), "renameUser", &struct{}{})
	}
	adaStream := "user-" + ada.User.ID
	wantCode(t, "maxCount on a user", gql(t, a, `mutation($s: String!) { setStreamMetadata(streamId: $s, maxCount: 2) { id } }`, map[string]any{"s": adaStream}), "BAD_USER_INPUT")
	var set struct {
		FirstVersion int
		Metadata     struct{ TruncateBefore, MaxAge, MaxCount *int }
	}
	ok(t, gql(t, a, `mutation($s: String!) { setStreamMetadata(streamId: $s, truncateBefore: 3) { firstVersion metadata { truncateBefore maxAge maxCount } } }`, map[string]any{"s": adaStream}), "setStreamMetadata", &set)
	if set.FirstVersion != 3 || set.Metadata.TruncateBefore == nil || *set.Metadata.TruncateBefore != 3 || set.Metadata.MaxAge != nil || set.Metadata.MaxCount != nil {
		t.Errorf("setStreamMetadata = %+v", set)
	}
	wantCode(t, "truncateBefore moving back", gql(t, a, `mutation($s: String!) { setStreamMetadata(streamId: $s, truncateBefore: 2) { id } }`, map[string]any{"s": adaStream}), "BAD_USER_INPUT")
	checkAda := func(when string) {
		t.Helper()
		var u struct {
			Name    string
			Version int
			History struct {
				Edges []struct {
					Node struct {
						Event struct{ Version int }
						State struct{ Name, Email string }
					}
				}
			}
		}
		ok(t, gql(t, a, `query($id: ID!) { user(id: $id, atVersion: 4) { name version history { edges { node { event { version } state { name email } } } } } }`, map[string]any{"id": ada.User.ID}), "user", &u)
		if u.Name != "Ada D" || u.Version != 4 || len(u.History.Edges) != 2 || u.History.Edges[0].Node.Event.Version != 3 || u.History.Edges[0].Node.State.Email != "ada@example.com" {
			t.Errorf("%s: user = %+v", when, u)
		}
		r := gql(t, a, `query($id: ID!) { user(id: $id, atVersion: 1) { name } }`, map[string]any{"id": ada.User.ID})
		wantCode(t, when+": user at a truncated version", r, "STREAM_TRUNCATED")
		if len(r.Errors) == 1 && r.Errors[0].Extensions["firstVersion"] != float64(3) {
			t.Errorf("%s: STREAM_TRUNCATED extensions = %v", when, r.Errors[0].Extensions)
		}
		var at2 struct{ Name string }
		ok(t, gql(t, a, `query($id: ID!) { user(id: $id, atVersion: 2) { name } }`, map[string]any{"id": ada.User.ID}), "user", &at2)
		if at2.Name != "Ada B" {
			t.Errorf("%s: user at version 2 (the snapshot) = %+v", when, at2)
		}
		ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { events { edges { node { version } } } } }`, map[string]any{"s": adaStream}), "stream", &events)
		if got := events.Events.versions(); got != "[3 4]" {
			t.Errorf("%s: the truncated stream reads %s", when, got)
		}
	}
	checkAda("before the scavenge")

	// Cap a plain stream: reads hide at once.
	for range 5 {
		ok(t, gql(t, a, appendM, map[string]any{"s": "log-1", "t": "Line"}), "appendEvents", &last)
	}
	ok(t, gql(t, a, `mutation { setStreamMetadata(streamId: "log-1", maxCount: 2) { firstVersion } }`, nil), "setStreamMetadata", &set)
	ok(t, gql(t, a, `query { stream(id: "log-1") { events { edges { node { version } } } } }`, nil), "stream", &events)
	if got := events.Events.versions(); got != "[4 5]" || set.FirstVersion != 4 {
		t.Errorf("capped stream reads %s from %d, want [4 5] from 4", got, set.FirstVersion)
	}

	// Scavenge once the projections have applied everything: exactly the hidden rows go.
	ok(t, gql(t, a, `query($id: ID!, $p: String) { user(id: $id, consistentWith: $p) { name } }`, map[string]any{"id": ada.User.ID, "p": last.Position}), "user", &struct{}{})
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	positions := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		rows, err := conn.Query(t.Context(), `SELECT stream_id || '@' || version, transaction_id::text || '/' || position FROM events`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := positions()
	hidden := []string{"cart-1@1", "cart-1@2", "cart-1@3", "user-" + bo.User.ID + "@1", adaStream + "@1", adaStream + "@2", "log-1@1", "log-1@2", "log-1@3"}
	var stdout, stderr syncBuffer
	if err := Run(t.Context(), []string{"scavenge", "--scavenge-batch", "2"}, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": url})); err != nil {
		t.Fatalf("strata scavenge: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("scavenged %d events", len(hidden))) || !strings.Contains(stderr.String(), "scavenge progress") {
		t.Errorf("strata scavenge printed:\n%s\n%s", stdout.String(), stderr.String())
	}
	after := positions()
	for _, k := range hidden {
		if _, ok := before[k]; !ok {
			t.Errorf("%s was not there to scavenge", k)
		}
		delete(before, k)
	}
	if b, a := mustJSON(t, before), mustJSON(t, after); b != a {
		t.Errorf("rows after the scavenge:\n%s\nwant:\n%s", a, b)
	}
	checkAda("after the scavenge")
	var renamed struct {
		User struct {
			Name    string
			Version int
		}
	}
	ok(t, gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "Ada E", expectedVersion: 4) { user { name version } } }`, map[string]any{"id": ada.User.ID}), "renameUser", &renamed)
	if renamed.User.Name != "Ada E" || renamed.User.Version != 5 {
		t.Errorf("rename after the scavenge = %+v", renamed)
	}
	var projections []struct {
		Name    string
		Skipped int
	}
	ok(t, gql(t, a, `query { projections { name skipped } }`, nil), "projections", &projections)
	for _, p := range projections {
		if p.Skipped != 0 {
			t.Errorf("projection %s skipped %d events", p.Name, p.Skipped)
		}
	}
}

// A user subscription completes at the user's tombstone; subscribing to a deleted user answers
// STREAM_DELETED; a truncated user is followed from its snapshot.
func TestUserSubscriptionAndStreamLifecycle(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t), "--scavenge-interval", "0")
	a := srv.addr
	var u, v userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ann", "e": "ann@example.com"}), "registerUser", &u)
	ok(t, gql(t, a, registerM, map[string]any{"n": "Vi", "e": "vi@example.com"}), "registerUser", &v)
	// Vi's stream is truncated after its last event: the snapshot holds all of it.
	ok(t, gql(t, a, `mutation($s: String!) { setStreamMetadata(streamId: $s, truncateBefore: 2) { id } }`, map[string]any{"s": "user-" + v.User.ID}), "setStreamMetadata", &struct{}{})

	c, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	next := func(id string) wsclient.Result {
		t.Helper()
		r, err := c.Next(20 * time.Second)
		if err != nil || r.ID != id {
			t.Fatalf("next: %+v %v, want a message of %s", r, err, id)
		}
		return r
	}
	for id, user := range map[string]string{"u": u.User.ID, "v": v.User.ID} {
		if err := c.Subscribe(id, `subscription($id: ID!) { user(id: $id) { name version } }`, map[string]any{"id": user}); err != nil {
			t.Fatal(err)
		}
		if r := next(id); len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"version":1`) {
			t.Fatalf("first state of %s: %+v", id, r)
		}
	}
	ok(t, gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "Vic") { position } }`, map[string]any{"id": v.User.ID}), "renameUser", &struct{}{})
	if r := next("v"); string(r.Data) != `{"user":{"name":"Vic","version":2}}` {
		t.Errorf("the truncated user after a rename: %+v", r)
	}
	ok(t, gql(t, a, `mutation($s: String!) { deleteStream(streamId: $s) { position } }`, map[string]any{"s": "user-" + u.User.ID}), "deleteStream", &struct{}{})
	if r := next("u"); !r.Done {
		t.Errorf("after the tombstone: %+v, want the subscription complete", r)
	}
	if err := c.Subscribe("w", `subscription($id: ID!) { user(id: $id) { name } }`, map[string]any{"id": u.User.ID}); err != nil {
		t.Fatal(err)
	}
	if r := next("w"); !strings.Contains(string(r.Errors), "STREAM_DELETED") {
		t.Errorf("subscribing to a deleted user: %+v", r)
	}
}
