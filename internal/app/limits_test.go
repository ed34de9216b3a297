package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// Each limit against hostile requests answers with its own code, and the server goes on serving.
func TestHostileRequestsMeetTheirLimits(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t), "--mode", "production", "--max-depth", "6", "--max-aliases", "3",
		"--max-root-fields", "4", "--max-complexity", "3000", "--max-tokens", "2000", "--max-body-bytes", "65536",
		"--max-subscriptions-per-connection", "2")
	a := srv.addr
	for _, tc := range []struct {
		name, query, code, message string
	}{
		{"too deep", `{ users { edges { node { orders { edges { node { customer { name } } } } } } } }`, "QUERY_TOO_DEEP", "8 levels"},
		{"too many aliases", `{ a: stream(id: "a") { id } b: stream(id: "b") { id } c: stream(id: "c") { id } d: stream(id: "d") { id } }`, "TOO_MANY_ALIASES", "4 aliased"},
		{"too many root fields", `{ stream(id: "a") { id } allEvents { pageInfo { hasNextPage } } projections { name } users { pageInfo { hasNextPage } } orders { pageInfo { hasNextPage } } }`, "TOO_MANY_ROOT_FIELDS", "5 top-level"},
		{"too complex", `{ allEvents(first: 1000) { edges { cursor node { id type data } } } }`, "COMPLEXITY_LIMIT_EXCEEDED", "exceeds the limit of 3000"},
		{"too many tokens", "{ " + strings.Repeat("__typename ", 2500) + "}", "GRAPHQL_PARSE_FAILED", "token limit"},
		{"no introspection in production", `{ __schema { types { name } } }`, "INTROSPECTION_DISABLED", "introspection is off"},
	} {
		r := gql(t, a, tc.query, nil)
		if r.code() != tc.code || !strings.Contains(strings.ToLower(r.Errors[0].Message), strings.ToLower(tc.message)) {
			t.Errorf("%s: %+v, want %s saying %q", tc.name, r.Errors, tc.code, tc.message)
		}
	}
	// No suggestions that would spell the schema out.
	if r := gql(t, a, `{ strem(id: "x") { id } }`, nil); len(r.Errors) == 0 || strings.Contains(r.Errors[0].Message, "Did you mean") {
		t.Errorf("a misspelled field in production: %+v", r.Errors)
	}

	// A body over the limit is refused before it is read.
	body, _ := json.Marshal(map[string]any{"query": "{ projections { name } }", "variables": map[string]any{"pad": strings.Repeat("x", 100_000)}})
	resp, err := testHTTP.Post("http://"+a+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "REQUEST_TOO_LARGE") {
		t.Errorf("100 KB body: %d %s", resp.StatusCode, raw)
	}
	// A form post (what a page on another site could forge) is not GraphQL here.
	resp, err = testHTTP.Post("http://"+a+"/query", "application/x-www-form-urlencoded", strings.NewReader(`query=mutation{registerUser(name:"x",email:"x@example.com"){position}}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("a form post was answered with %d", resp.StatusCode)
	}

	// Subscriptions per connection.
	c, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	for _, id := range []string{"1", "2", "3"} {
		if err := c.Subscribe(id, `subscription { events { id } }`, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The three start concurrently; whichever comes third is refused, the other two run on.
	r, err := c.Next(20 * time.Second)
	if err != nil || !strings.Contains(string(r.Errors), "LIMIT_EXCEEDED") {
		t.Errorf("third subscription on a connection with a cap of 2: %+v %v", r, err)
	}
	refused := r.ID
	for {
		next, err := c.Next(500 * time.Millisecond)
		if err != nil {
			break // quiet: the other two wait for events
		}
		if !next.Done || next.ID != refused {
			t.Errorf("after the refusal of %s, with no event appended: %+v", refused, next)
			break
		}
	}

	// Still serving.
	var p []struct{ Name string }
	ok(t, gql(t, a, `{ projections { name } }`, nil), "projections", &p)
	if len(p) != len(readModelNames()) {
		t.Errorf("projections after the hostile requests: %+v, want %v", p, readModelNames())
	}
}

// --request-timeout reaches PostgreSQL: an append stuck behind a lock is answered TIMEOUT when
// the time is up, and its statement is cancelled in the database, not left waiting.
func TestRequestTimeoutCancelsTheDatabaseWork(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url, "--request-timeout", "1s")
	pool := dbtest.PoolFor(t, url, 4)
	ctx := t.Context()
	release := holdStreamLock(t, pool, "stuck-1")
	waiting := func() int { return appendsWaiting(t, pool) }
	start := time.Now()
	answered := make(chan gqlResponse, 1)
	go func() {
		answered <- gql(t, srv.addr, `mutation { appendEvents(streamId: "stuck-1", events: [{type: "T", data: {}}]) { position } }`, nil)
	}()
	waitFor(t, "the append to wait on the lock in PostgreSQL", func() bool { return waiting() == 1 || len(answered) == 1 })
	r := <-answered
	if r.code() != "TIMEOUT" {
		t.Fatalf("an append stuck past --request-timeout: %+v, want TIMEOUT", r.Errors)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the timeout of 1s was answered after %s", took)
	}
	waitFor(t, "the stuck statement to be cancelled in PostgreSQL", func() bool { return waiting() == 0 })
	release()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = 'stuck-1'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the timed-out append wrote %d events (%v)", n, err)
	}
}
