package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// personalSub collects a subscription to events with their payloads.
type personalSub struct {
	c *wsclient.Client
}

func subscribePersonal(t *testing.T, addr string, vars map[string]any) personalSub {
	t.Helper()
	c, err := wsclient.Dial(t.Context(), "ws://"+addr+"/query", wsclient.GraphQLWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Subscribe("1", `subscription($after: String, $s: String, $c: String) {
		events(after: $after, streamId: $s, category: $c) { streamId type data redacted } }`, vars); err != nil {
		t.Fatal(err)
	}
	return personalSub{c: c}
}

// next returns the next n events of stream (others are skipped), as JSON text, within 20 s.
func (s personalSub) next(t *testing.T, stream string, n int) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n {
		r, err := s.c.Next(time.Until(deadline)) // an error once the deadline has passed
		if err != nil {
			t.Fatalf("subscription, after %d of %d events: %v", len(out), n, err)
		}
		var d struct {
			Events struct{ StreamID string }
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("subscription payload %s: %v", r.Data, err)
		}
		if d.Events.StreamID == stream {
			out = append(out, string(r.Data))
		}
	}
	return out
}

type personalEvent struct {
	ID, Position, Type string
	Data               json.RawMessage
	Redacted           []string
}

// Crypto-shredding end to end, over HTTP and WebSocket against a running server on real
// PostgreSQL: a user's name and email are stored encrypted, read in the clear on every path
// until forgetUser, and as "[redacted]" on every path afterwards (aggregate state, time travel,
// history, allEvents, stream, subscriptions, the users projection live and rebuilt), while the
// events and their positions stay and other users are untouched.
func TestForgetUserShredsPersonalDataOnEveryPath(t *testing.T) {
	url := dbtest.URL(t)
	keyFile := filepath.Join(t.TempDir(), "personal.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("a1", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startServeOn(t, url, "--snapshot-every", "user=1", "--personal-data-key-file", keyFile).addr
	const redacted = `"[redacted]"`

	var carol, ada, bob userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Carol", "e": "carol@example.com"}), "registerUser", &carol)
	live := subscribePersonal(t, a, map[string]any{"c": "user"})
	// A subscription without after gets what is appended once the server has registered it,
	// which its start message does not wait for: Ada registers after that.
	waitMetric(t, "http://"+a+"/metrics", "strata_subscriptions_active", 1)
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada Lovelace", "e": "ada@example.com"}), "registerUser", &ada)
	time.Sleep(20 * time.Millisecond)
	registeredAt := time.Now()
	time.Sleep(20 * time.Millisecond)
	var changed userOut
	ok(t, gql(t, a, `mutation($id: ID!) { changeUserEmail(id: $id, email: "ada@analytical.example") { user { email version } position } }`,
		map[string]any{"id": ada.User.ID}), "changeUserEmail", &changed)
	if changed.User.Email != "ada@analytical.example" || changed.User.Version != 2 {
		t.Fatalf("changed: %+v", changed)
	}
	ok(t, gql(t, a, registerM, map[string]any{"n": "Bob", "e": "bob@example.com"}), "registerUser", &bob)
	stream := "user-" + ada.User.ID

	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rawEvents := func() string {
		t.Helper()
		var raw string
		if err := conn.QueryRow(t.Context(), `SELECT string_agg(data::text, ' ') FROM events`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	countOf := func(query string, args ...any) (n int) {
		t.Helper()
		if err := conn.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if raw := rawEvents(); strings.Contains(raw, "ada@") || strings.Contains(raw, "Lovelace") || strings.Contains(raw, "bob@") || !strings.Contains(raw, `"$personal"`) {
		t.Fatalf("the events table holds personal data in the clear: %s", raw)
	}
	if n := countOf(`SELECT count(*) FROM personal_keys WHERE wrapped`); n != 3 {
		t.Errorf("%d wrapped keys, want one for each of the 3 users", n)
	}
	if n := countOf(`SELECT count(*) FROM snapshots WHERE stream_id = $1`, stream); n == 0 {
		t.Fatalf("no snapshot of %s: the test would not see them deleted", stream)
	}

	// views reads Ada through every path, each as JSON text.
	views := func(pos string, adaEvents int) map[string]string {
		t.Helper()
		out := map[string]string{}
		vars := map[string]any{"id": ada.User.ID, "p": pos, "s": stream, "t": registeredAt.Format(time.RFC3339Nano)}
		for name, q := range map[string]string{
			"projection": `query($id: ID!, $p: String) { user(id: $id, consistentWith: $p) { name email status } }`,
			"atVersion":  `query($id: ID!) { user(id: $id, atVersion: 1) { name email } }`,
			"asOf":       `query($id: ID!, $t: Time) { user(id: $id, asOf: $t) { name email } }`,
			"history":    `query($id: ID!) { user(id: $id, atVersion: 2) { history { edges { node { event { data } state { name email } changes { field before after } } } } } }`,
			"users":      `query($p: String) { users(consistentWith: $p, first: 100) { edges { node { id name email } } } }`,
			"usersAsOf":  `query($t: Time) { users(asOf: $t, first: 100) { edges { node { id name email } } } }`,
		} {
			r := gql(t, a, q, vars)
			if len(r.Errors) > 0 {
				t.Fatalf("%s: %+v", name, r.Errors)
			}
			d := r.Data
			text := string(d["user"]) + string(d["users"])
			if name == "users" || name == "usersAsOf" { // Ada's row only
				var c struct {
					Edges []struct{ Node json.RawMessage }
				}
				_ = json.Unmarshal(d["users"], &c)
				text = ""
				for _, e := range c.Edges {
					if strings.Contains(string(e.Node), ada.User.ID) {
						text += string(e.Node)
					}
				}
			}
			out[name] = text
		}
		var st struct {
			Events struct {
				Edges []struct{ Node personalEvent }
			}
		}
		ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { events { edges { node { id position type data redacted } } } } }`, vars), "stream", &st)
		b, _ := json.Marshal(st.Events.Edges)
		out["stream"] = string(b)
		// allEvents shows an event once no older transaction anywhere in the shared cluster is
		// still open: wait until it shows all of Ada's.
		deadline := time.Now().Add(15 * time.Second)
		for {
			var all struct {
				Edges []struct {
					Node struct {
						personalEvent
						StreamID string
					}
				}
			}
			ok(t, gql(t, a, `{ allEvents(category: "user") { edges { node { id position type data redacted streamId } } } }`, nil), "allEvents", &all)
			var hers []personalEvent
			for _, e := range all.Edges {
				if e.Node.StreamID == stream {
					hers = append(hers, e.Node.personalEvent)
				}
			}
			if len(hers) >= adaEvents || time.Now().After(deadline) {
				b, _ = json.Marshal(hers)
				out["allEvents"] = string(b)
				return out
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	streamEvents := func() []personalEvent {
		t.Helper()
		var st struct {
			Events struct {
				Edges []struct{ Node personalEvent }
			}
		}
		ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { events { edges { node { id position type data redacted } } } } }`, map[string]any{"s": stream}), "stream", &st)
		var out []personalEvent
		for _, e := range st.Events.Edges {
			out = append(out, e.Node)
		}
		return out
	}

	before := views(bob.Position, 2)
	for name, text := range before {
		if !strings.Contains(text, "Lovelace") || strings.Contains(text, redacted) {
			t.Errorf("before forgetting, %s: %s", name, text)
		}
	}
	if !strings.Contains(before["allEvents"], "ada@analytical.example") || !strings.Contains(before["history"], "ada@analytical.example") {
		t.Errorf("before forgetting, the new address is missing: %s", before["history"])
	}
	catchUp := subscribePersonal(t, a, map[string]any{"after": carol.Position, "s": stream}).next(t, stream, 2)
	liveBefore := live.next(t, stream, 2)
	for i, text := range append(catchUp, liveBefore...) {
		if !strings.Contains(text, "ada@") || strings.Contains(text, redacted) {
			t.Errorf("subscription event %d before forgetting: %s", i, text)
		}
	}
	eventsBefore := streamEvents()
	allBefore := countOf(`SELECT count(*) FROM events`)

	// A dry run forgets nothing.
	var dry struct {
		User   struct{ Status, Email string }
		DryRun bool
	}
	ok(t, gql(t, a, `mutation($id: ID!) { forgetUser(id: $id, dryRun: true) { user { status email } dryRun } }`, map[string]any{"id": ada.User.ID}), "forgetUser", &dry)
	if !dry.DryRun || dry.User.Status != "FORGOTTEN" || countOf(`SELECT count(*) FROM personal_keys WHERE subject = $1 AND key IS NOT NULL`, ada.User.ID) != 1 {
		t.Errorf("dry run: %+v", dry)
	}

	// Forgetting.
	var forgot struct {
		User struct {
			Name, Email, Status string
			Version             int
		}
		Position string
		Events   []struct{ Type string }
	}
	ok(t, gql(t, a, `mutation($id: ID!) { forgetUser(id: $id) { user { name email status version } position events { type } } }`,
		map[string]any{"id": ada.User.ID}), "forgetUser", &forgot)
	if forgot.User.Status != "FORGOTTEN" || forgot.User.Name != "[redacted]" || forgot.User.Email != "[redacted]" || forgot.User.Version != 3 ||
		len(forgot.Events) != 1 || forgot.Events[0].Type != "UserForgotten" {
		t.Fatalf("forgetUser: %+v", forgot)
	}
	if n := countOf(`SELECT count(*) FROM snapshots WHERE stream_id = $1`, stream); n != 0 {
		t.Errorf("%d snapshots of %s after forgetting", n, stream)
	}
	if n := countOf(`SELECT count(*) FROM personal_keys WHERE subject = $1 AND key IS NULL`, ada.User.ID); n != 1 {
		t.Errorf("the key of %s is not gone", ada.User.ID)
	}
	if n := countOf(`SELECT count(*) FROM events`); n != allBefore+1 {
		t.Errorf("%d events after forgetting, %d before: want UserForgotten more (it frees the address by its tag)", n, allBefore)
	}
	liveForgotten := live.next(t, stream, 1)
	if !strings.Contains(liveForgotten[0], "UserForgotten") || strings.Contains(liveForgotten[0], "ada@") {
		t.Errorf("live UserForgotten: %s", liveForgotten[0])
	}

	checkRedacted := func(when string) {
		t.Helper()
		after := views(forgot.Position, 3)
		for name, text := range after {
			if strings.Contains(text, "Lovelace") || strings.Contains(text, "ada@") || !strings.Contains(text, redacted) {
				t.Errorf("%s, %s: %s", when, name, text)
			}
		}
		if !strings.Contains(after["projection"], `"status":"FORGOTTEN"`) {
			t.Errorf("%s, projection: %s", when, after["projection"])
		}
		if !strings.Contains(after["stream"], `"Redacted":["`) {
			t.Errorf("%s, stream: the events do not say what was redacted: %s", when, after["stream"])
		}
		events := streamEvents()
		if len(events) != len(eventsBefore)+1 || events[len(events)-1].Type != "UserForgotten" {
			t.Fatalf("%s: events %+v, before %+v", when, events, eventsBefore)
		}
		for i, e := range eventsBefore {
			if events[i].ID != e.ID || events[i].Position != e.Position || events[i].Type != e.Type {
				t.Errorf("%s: event %d is %+v, was %+v", when, i, events[i], e)
			}
		}
		// Bob and Carol are untouched.
		r := gql(t, a, `query($b: ID!, $c: ID!, $p: String) { b: user(id: $b, consistentWith: $p) { email } c: user(id: $c) { name } }`,
			map[string]any{"b": bob.User.ID, "c": carol.User.ID, "p": forgot.Position})
		if string(r.Data["b"]) != `{"email":"bob@example.com"}` || string(r.Data["c"]) != `{"name":"Carol"}` {
			t.Errorf("%s, other users: %s %s %+v", when, r.Data["b"], r.Data["c"], r.Errors)
		}
		catchUp := subscribePersonal(t, a, map[string]any{"after": carol.Position, "s": stream}).next(t, stream, 3)
		for i, text := range catchUp {
			if strings.Contains(text, "ada@") || strings.Contains(text, "Lovelace") || i < 2 && !strings.Contains(text, redacted) {
				t.Errorf("%s, subscription event %d: %s", when, i, text)
			}
		}
	}
	checkRedacted("after forgetting")
	var rebuilt struct{ Skipped int }
	ok(t, gql(t, a, `mutation { rebuildProjection(name: "users") { skipped } }`, nil), "rebuildProjection", &rebuilt)
	if rebuilt.Skipped != 0 {
		t.Errorf("the rebuild skipped %d events", rebuilt.Skipped)
	}
	checkRedacted("after rebuilding the users projection")
	if raw := rawEvents(); strings.Contains(raw, "ada@") || strings.Contains(raw, "Lovelace") {
		t.Errorf("the events table holds personal data in the clear: %s", raw)
	}

	// What later commands do: refused with rule user-forgotten; forgetting again appends nothing.
	for _, m := range []string{
		`mutation($id: ID!) { changeUserEmail(id: $id, email: "again@example.com") { position } }`,
		`mutation($id: ID!) { renameUser(id: $id, name: "Again") { position } }`,
		`mutation($id: ID!) { deactivateUser(id: $id) { position } }`,
	} {
		wantRule(t, m, gql(t, a, m, map[string]any{"id": ada.User.ID}), "user-forgotten")
	}
	var again struct {
		User   struct{ Status string }
		Events []struct{ Type string }
	}
	ok(t, gql(t, a, `mutation($id: ID!) { forgetUser(id: $id) { user { status } events { type } } }`, map[string]any{"id": ada.User.ID}), "forgetUser", &again)
	if again.User.Status != "FORGOTTEN" || len(again.Events) != 0 {
		t.Errorf("forgetting again: %+v", again)
	}
	wantCode(t, "forgetting nobody", gql(t, a, `mutation($id: ID!) { forgetUser(id: $id) { position } }`, map[string]any{"id": "0195c0de-0000-7000-8000-000000000000"}), "NOT_FOUND")
	// The address was released: someone may register with it again.
	var reuse userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Another Ada", "e": "ada@analytical.example"}), "registerUser", &reuse)
	if reuse.User.Email != "ada@analytical.example" {
		t.Errorf("re-registering the address: %+v", reuse)
	}
	if n := countOf(`SELECT count(*) FROM events WHERE stream_id = $1`, stream); n != len(eventsBefore)+1 {
		t.Errorf("%s has %d events", stream, n)
	}
}

// Several servers share one database and no server caches keys: once forgetUser returns on
// one, the other reads the user's events redacted at once.
func TestForgettingTakesEffectOnEveryServerAtOnce(t *testing.T) {
	url := dbtest.URL(t)
	one, two := startServeOn(t, url).addr, startServeOn(t, url).addr
	var ada userOut
	ok(t, gql(t, one, registerM, map[string]any{"n": "Ada Lovelace", "e": "ada@example.com"}), "registerUser", &ada)
	read := func() string {
		t.Helper()
		var st struct {
			Events struct {
				Edges []struct {
					Node struct{ Data json.RawMessage }
				}
			}
		}
		ok(t, gql(t, two, `query($s: String!) { stream(id: $s) { events { edges { node { data } } } } }`, map[string]any{"s": "user-" + ada.User.ID}), "stream", &st)
		b, _ := json.Marshal(st)
		return string(b)
	}
	if got := read(); !strings.Contains(got, "ada@example.com") {
		t.Fatalf("before: %s", got)
	}
	ok(t, gql(t, one, `mutation($id: ID!) { forgetUser(id: $id) { position } }`, map[string]any{"id": ada.User.ID}), "forgetUser", &struct{}{})
	if got := read(); strings.Contains(got, "ada@") || strings.Contains(got, "Lovelace") || !strings.Contains(got, "[redacted]") {
		t.Errorf("the other server, right after: %s", got)
	}
}
