package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// getAs sends a GraphQL query over GET with a bearer token ("" for none) and returns the
// response (its body read into r) for its status and headers.
func getAs(t *testing.T, addr, token, query string, vars map[string]any) (*http.Response, gqlResponse) {
	t.Helper()
	params := url.Values{"query": {query}}
	if vars != nil {
		b, err := json.Marshal(vars)
		if err != nil {
			t.Fatal(err)
		}
		params.Set("variables", string(b))
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/query?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, body := fetch(t, testHTTP, req)
	var r gqlResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET %s: %d %.300s: not a GraphQL response: %v", query, resp.StatusCode, body, err)
	}
	return resp, r
}

// A query over GET answers as over POST; an answer about the past (every root field at a
// version, or as of a minute ago or more, nothing read as it is now below them) may be cached
// for five minutes by the client, every other answer not at all.
func TestGETQueriesAndCaching(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	var reg struct {
		User     struct{ ID string }
		Position string
	}
	ok(t, gql(t, srv.addr, `mutation { registerUser(name: "Ann", email: "ann@example.com") { user { id } position } }`, nil), "registerUser", &reg)

	const userQ = `query($id: ID!, $c: String) { user(id: $id, consistentWith: $c) { name } }`
	resp, r := getAs(t, srv.addr, "", userQ, map[string]any{"id": reg.User.ID, "c": reg.Position})
	if resp.StatusCode != http.StatusOK || r.code() != "" || string(r.Data["user"]) != `{"name":"Ann"}` {
		t.Fatalf("the user over GET: %d %s %+v", resp.StatusCode, r.Data["user"], r.Errors)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("a read of now: Cache-Control %q, want no-store", cc)
	}

	longAgo := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	justNow := time.Now().Add(-10 * time.Second).UTC().Format(time.RFC3339Nano)
	for _, tc := range []struct {
		name, query string
		cacheable   bool
	}{
		{"at a version", `query($id: ID!) { user(id: $id, atVersion: 1) { name } }`, true},
		{"as of an hour ago", `query($id: ID!) { user(id: $id, asOf: "` + longAgo + `") { id } }`, true},
		{"the list as of an hour ago", `{ users(asOf: "` + longAgo + `") { edges { node { id } } } }`, true},
		{"through a fragment", `query($id: ID!) { ...F } fragment F on Query { user(id: $id, atVersion: 1) { name } }`, true},
		{"as of ten seconds ago", `query($id: ID!) { user(id: $id, asOf: "` + justNow + `") { name } }`, false},
		{"a version and now", `query($id: ID!) { user(id: $id, atVersion: 1) { name } projections { name } }`, false},
		{"a history below a version", `query($id: ID!) { user(id: $id, atVersion: 1) { history { edges { node { event { type } } } } } }`, false},
		{"orders below a version", `query($id: ID!) { user(id: $id, atVersion: 1) { orders { edges { node { id } } } } }`, false},
		{"an error", `query($id: ID!) { user(id: $id, atVersion: 1) { name } order(id: "not-a-uuid", atVersion: 1) { id } }`, false},
	} {
		vars := map[string]any{"id": reg.User.ID}
		if tc.query[0] == '{' {
			vars = nil
		}
		resp, r := getAs(t, srv.addr, "", tc.query, vars)
		if resp.StatusCode != http.StatusOK || (tc.name != "an error" && len(r.Errors) > 0) {
			t.Errorf("%s: %d %+v", tc.name, resp.StatusCode, r.Errors)
			continue
		}
		cc, vary := resp.Header.Get("Cache-Control"), resp.Header.Get("Vary")
		switch {
		case tc.cacheable && (cc != graph.CacheableQuery || vary != "Authorization"):
			t.Errorf("%s: Cache-Control %q, Vary %q; want %q, Authorization", tc.name, cc, vary, graph.CacheableQuery)
		case !tc.cacheable && cc != "no-store":
			t.Errorf("%s: Cache-Control %q, want no-store", tc.name, cc)
		}
	}

	// POST answers the same way, and a mutation is never cached.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+srv.addr+"/query",
		jsonBody(t, map[string]any{"query": `query($id: ID!) { user(id: $id, atVersion: 1) { name } }`, "variables": map[string]any{"id": reg.User.ID}}))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	post, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = post.Body.Close()
	if cc := post.Header.Get("Cache-Control"); post.StatusCode != http.StatusOK || cc != graph.CacheableQuery {
		t.Errorf("a POST at a version: %d, Cache-Control %q, want %q", post.StatusCode, cc, graph.CacheableQuery)
	}
	req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+srv.addr+"/query",
		jsonBody(t, map[string]any{"query": `mutation { registerUser(name: "Bo", email: "bo@example.com") { position } }`}))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	mut, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = mut.Body.Close()
	if cc := mut.Header.Get("Cache-Control"); mut.StatusCode != http.StatusOK || cc != "no-store" {
		t.Errorf("a mutation: %d, Cache-Control %q, want no-store", mut.StatusCode, cc)
	}
}

// With authentication on, GET needs a credential as POST does, and the role is checked first:
// a reader's mutation over GET is FORBIDDEN, a writer's is refused for its method; neither
// writes anything.
func TestGETAuthentication(t *testing.T) {
	s := startAuthServer(t)
	reader := s.token(t, "rita", "reader", time.Hour)
	writer := s.token(t, "walt", "writer", time.Hour)
	const usersQ = `{ users { edges { node { id } } } }`

	resp, r := getAs(t, s.addr, "", usersQ, nil)
	if resp.StatusCode != http.StatusUnauthorized || r.code() != graph.CodeUnauthenticated || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("GET without a token: %d %q, want 401 %s with WWW-Authenticate", resp.StatusCode, r.code(), graph.CodeUnauthenticated)
	}
	resp, r = getAs(t, s.addr, s.token(t, "rita", "reader", -time.Hour), usersQ, nil)
	if resp.StatusCode != http.StatusUnauthorized || r.code() != graph.CodeUnauthenticated {
		t.Errorf("GET with an expired token: %d %q, want 401 %s", resp.StatusCode, r.code(), graph.CodeUnauthenticated)
	}
	resp, r = getAs(t, s.addr, reader, usersQ, nil)
	if resp.StatusCode != http.StatusOK || r.code() != "" || r.Data["users"] == nil {
		t.Errorf("a reader's query over GET: %d %+v", resp.StatusCode, r.Errors)
	}
	resp, r = getAs(t, s.addr, reader, registerMutation, nil)
	if resp.StatusCode != http.StatusOK || r.code() != graph.CodeForbidden {
		t.Errorf("a reader's mutation over GET: %d %q, want 200 %s", resp.StatusCode, r.code(), graph.CodeForbidden)
	}
	resp, r = getAs(t, s.addr, writer, registerMutation, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost || r.code() != graph.CodeBadRequest {
		t.Errorf("a writer's mutation over GET: %d Allow %q %q, want 405 Allow POST %s", resp.StatusCode, resp.Header.Get("Allow"), r.code(), graph.CodeBadRequest)
	}
	var n int
	if err := dbtest.PoolFor(t, s.url, 1).QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the refused mutations wrote %d events", n)
	}
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
