package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
	"github.com/strata-es/strata/internal/transport/explorer"
)

// apqClientDir is web/apq-client: Apollo Client, pinned by its package-lock.json, and the script
// that runs its persisted-queries link.
const apqClientDir = "../../web/apq-client"

// seenRequest is what the recording proxy saw of one request.
type seenRequest struct {
	Method   string
	HasQuery bool   // the request carried the document's text
	Hash     string // extensions.persistedQuery.sha256Hash
}

// recordingProxy forwards to the server at addr and records every GraphQL request it passes.
type recordingProxy struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (p *recordingProxy) take() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := p.seen
	p.seen = nil
	return seen
}

func startRecordingProxy(t *testing.T, addr string) (*recordingProxy, string) {
	t.Helper()
	p := &recordingProxy{}
	target := &url.URL{Scheme: "http", Host: addr}
	forward := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query      *string `json:"query"`
			Extensions struct {
				PersistedQuery struct {
					SHA256Hash string `json:"sha256Hash"`
				} `json:"persistedQuery"`
			} `json:"extensions"`
		}
		seen := seenRequest{Method: r.Method}
		if r.Method == http.MethodGet {
			q := r.URL.Query()
			seen.HasQuery = q.Has("query")
			_ = json.Unmarshal([]byte(q.Get("extensions")), &req.Extensions)
		} else {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("proxy: read the body: %v", err)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if err := json.Unmarshal(body, &req); err != nil {
				t.Errorf("proxy: body %s: %v", body, err)
			}
			seen.HasQuery = req.Query != nil
		}
		seen.Hash = req.Extensions.PersistedQuery.SHA256Hash
		p.mu.Lock()
		p.seen = append(p.seen, seen)
		p.mu.Unlock()
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL + "/query"
}

// Apollo Client's persisted-queries link (automatic persisted queries), run by Node against the
// real `strata serve` through a proxy that records what arrives: the first run sends the hash
// alone, is told PersistedQueryNotFound and sends the query with its hash; the second sends the
// hash alone, no query text, and gets the answer. Over POST, and over GET for hashed requests.
func TestApolloPersistedQueries(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the persisted-queries test runs Node.js: %v; install Node.js and npm (.ci/run does)", err)
	}
	installNodePackages(t, apqClientDir, "@apollo/client")
	script, err := filepath.Abs(filepath.Join(apqClientDir, "apq.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeOn(t, dbtest.URL(t))
	ok(t, gql(t, srv.addr, `mutation { appendEvents(streamId: "apq-1", events: [{type: "A", data: {}}, {type: "B", data: {}}], expectedVersion: 0) { position } }`, nil), "appendEvents", new(any))
	proxy, endpoint := startRecordingProxy(t, srv.addr)

	for _, method := range []string{"post", "get"} {
		t.Run(method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, script, endpoint, method)
			cmd.Dir = filepath.Dir(script)
			cmd.WaitDelay = 5 * time.Second
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("the Apollo script failed: %v; stderr:\n%s", err, stderr.String())
			}
			var results []struct {
				Data struct {
					Stream struct {
						ID      string `json:"id"`
						Version int    `json:"version"`
					} `json:"stream"`
				} `json:"data"`
				Errors []any `json:"errors"`
			}
			if err := json.Unmarshal(out, &results); err != nil {
				t.Fatalf("the Apollo script printed %.500q, not its results: %v", out, err)
			}
			if len(results) != 2 {
				t.Fatalf("%d results, want 2: %s", len(results), out)
			}
			for i, r := range results {
				if len(r.Errors) > 0 || r.Data.Stream.ID != "apq-1" || r.Data.Stream.Version != 2 {
					t.Errorf("run %d answered %+v, want stream apq-1 at version 2 and no errors", i+1, r)
				}
			}

			hashed := "POST"
			if method == "get" {
				hashed = "GET"
			}
			// A miss, the query sent whole (always POST), then a hit with the hash alone.
			want := []seenRequest{{hashed, false, ""}, {"POST", true, ""}, {hashed, false, ""}}
			seen := proxy.take()
			if len(seen) != len(want) {
				t.Fatalf("the server saw %d requests, want %d: %+v", len(seen), len(want), seen)
			}
			hash := seen[0].Hash
			if len(hash) != 64 {
				t.Fatalf("the first request named no sha256 hash: %+v", seen)
			}
			for i := range want {
				want[i].Hash = hash
				if seen[i] != want[i] {
					t.Errorf("request %d was %+v, want %+v", i+1, seen[i], want[i])
				}
			}
		})
	}
}

// persistedPost posts a request naming its document by hash (query "" sends none) and returns
// the response.
func persistedPost(t *testing.T, addr, query, hash string, vars map[string]any) gqlResponse {
	t.Helper()
	req := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}
	if query != "" {
		req["query"] = query
	}
	if vars != nil {
		req["variables"] = vars
	}
	return rawPost(t, addr, "", req)
}

// rawPost posts body as JSON, with a bearer token ("" for none).
func rawPost(t *testing.T, addr, token string, body any) gqlResponse {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/query", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	return r
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Automatic persisted queries refuse a hash that is not the query's, keep only a document that
// passed the limits, and a document run by its hash meets the limits and the GET rule again.
func TestPersistedQueriesChecks(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t), "--max-depth", "3")
	const q = `{ stream(id: "x") { id } }`

	if r := persistedPost(t, srv.addr, "", sha256Hex(q), nil); r.code() != "PERSISTED_QUERY_NOT_FOUND" || r.Errors[0].Message != "PersistedQueryNotFound" {
		t.Errorf("an unknown hash alone: %+v, want PersistedQueryNotFound with PERSISTED_QUERY_NOT_FOUND", r.Errors)
	}
	if r := persistedPost(t, srv.addr, q, sha256Hex(q+" "), nil); r.code() != "PERSISTED_QUERY_HASH_MISMATCH" {
		t.Errorf("a query with another's hash: %+v, want PERSISTED_QUERY_HASH_MISMATCH", r.Errors)
	}
	if r := persistedPost(t, srv.addr, "", sha256Hex(q+" "), nil); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("the mismatched hash was kept: %+v", r.Errors)
	}
	if r := persistedPost(t, srv.addr, "", "not-a-hash", nil); r.code() != "BAD_REQUEST" {
		t.Errorf("a hash that is not 64 hex digits: %+v, want BAD_REQUEST", r.Errors)
	}

	// Too deep: refused, and not kept.
	const deep = `{ stream(id: "x") { events { edges { node { streamId } } } } }`
	if r := persistedPost(t, srv.addr, deep, sha256Hex(deep), nil); r.code() != "QUERY_TOO_DEEP" {
		t.Errorf("a query beyond --max-depth sent with its hash: %+v, want QUERY_TOO_DEEP", r.Errors)
	}
	if r := persistedPost(t, srv.addr, "", sha256Hex(deep), nil); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("a query refused by the limits was kept: %+v", r.Errors)
	}

	// Kept, then run by hash alone, over POST and GET.
	if r := persistedPost(t, srv.addr, q, sha256Hex(q), nil); len(r.Errors) > 0 {
		t.Fatalf("the query with its hash: %+v", r.Errors)
	}
	if r := persistedPost(t, srv.addr, "", sha256Hex(q), nil); len(r.Errors) > 0 || string(r.Data["stream"]) != "null" {
		t.Errorf("the kept query by hash: data %s, errors %+v", r.Data["stream"], r.Errors)
	}
	// The operation log says how each document came.
	for _, how := range []string{"persisted=hash", "persisted=query+hash"} {
		if !strings.Contains(srv.stderr.String(), how) {
			t.Errorf("the log has no operation with %s:\n%s", how, srv.stderr.String())
		}
	}
	ext := `{"persistedQuery":{"version":1,"sha256Hash":"` + sha256Hex(q) + `"}}`
	resp, err := testHTTP.Get("http://" + srv.addr + "/query?extensions=" + url.QueryEscape(ext))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"stream":null`) {
		t.Errorf("the kept query by hash over GET: %d %s", resp.StatusCode, body)
	}

	// A mutation kept over POST is still refused over GET by its hash.
	const m = `mutation { appendEvents(streamId: "apq-m", events: [{type: "A", data: {}}]) { position } }`
	if r := persistedPost(t, srv.addr, m, sha256Hex(m), nil); len(r.Errors) > 0 {
		t.Fatalf("the mutation with its hash: %+v", r.Errors)
	}
	ext = `{"persistedQuery":{"version":1,"sha256Hash":"` + sha256Hex(m) + `"}}`
	resp, err = testHTTP.Get("http://" + srv.addr + "/query?extensions=" + url.QueryEscape(ext))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("a kept mutation by hash over GET: status %d, want 405", resp.StatusCode)
	}
}

// A document run by its hash is authenticated and authorized as the query itself would be: no
// credential is 401 before any lookup, and a reader may not run a mutation a writer had kept.
func TestPersistedQueriesAuthorization(t *testing.T) {
	s := startAuthServer(t)
	const m = `mutation { appendEvents(streamId: "apq-auth", events: [{type: "A", data: {}}]) { position } }`
	hashOnly := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha256Hex(m)}}}
	withQuery := map[string]any{"query": m, "extensions": hashOnly["extensions"]}

	if r := rawPost(t, s.addr, s.token(t, "w", "writer", time.Minute), withQuery); len(r.Errors) > 0 {
		t.Fatalf("the writer's mutation with its hash: %+v", r.Errors)
	}
	if r := rawPost(t, s.addr, s.token(t, "r", "reader", time.Minute), hashOnly); r.code() != "FORBIDDEN" {
		t.Errorf("a reader running the kept mutation by hash: %+v, want FORBIDDEN", r.Errors)
	}
	if r := rawPost(t, s.addr, "", hashOnly); r.code() != "UNAUTHENTICATED" {
		t.Errorf("no credential, by hash: %+v, want UNAUTHENTICATED", r.Errors)
	}
	if r := rawPost(t, s.addr, s.token(t, "w", "writer", time.Minute), hashOnly); len(r.Errors) > 0 {
		t.Errorf("the writer running the kept mutation by hash: %+v", r.Errors)
	}
	var events struct{ Version int }
	ok(t, rawPost(t, s.addr, s.admin, map[string]any{"query": `{ stream(id: "apq-auth") { version } }`}), "stream", &events)
	if events.Version != 2 {
		t.Errorf("the stream has %d events, want 2: the writer's two runs and nothing of the reader's", events.Version)
	}
}

// writeTrusted writes docs as a --trusted-documents file, each under its sha256, and returns
// its path.
func writeTrusted(t *testing.T, docs ...string) string {
	t.Helper()
	m := map[string]string{}
	for _, d := range docs {
		m[sha256Hex(d)] = d
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, string(b))
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trusted.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// getPersisted sends a GET naming its document by hash, through extensions or documentId.
func getPersisted(t *testing.T, addr string, params url.Values) (int, gqlResponse) {
	t.Helper()
	resp, err := testHTTP.Get("http://" + addr + "/query?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, r
}

// With --trusted-documents the server runs the listed documents, named by
// extensions.persistedQuery or documentId over POST and GET, or sent whole, and the Explorer's
// own operations; anything else is PERSISTED_QUERY_NOT_ALLOWED.
func TestTrustedDocuments(t *testing.T) {
	const listed = `query Listed { stream(id: "t-1") { id } }`
	const unlisted = `query Unlisted { stream(id: "t-1") { id version } }`
	const listedAppend = `mutation { appendEvents(streamId: "trusted-1", events: [{type: "A", data: {}}]) { position } }`
	srv := startServeOn(t, dbtest.URL(t), "--trusted-documents", writeTrusted(t, listed, listedAppend))
	h := sha256Hex(listed)
	ext := func(hash string) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
	}
	extJSON := func(hash string) string {
		b, _ := json.Marshal(ext(hash))
		return string(b)
	}

	runs := func(what string, r gqlResponse) {
		t.Helper()
		if len(r.Errors) > 0 || string(r.Data["stream"]) != "null" {
			t.Errorf("%s: data %s, errors %+v; want it to run", what, r.Data["stream"], r.Errors)
		}
	}
	refused := func(what string, r gqlResponse) {
		t.Helper()
		if r.code() != "PERSISTED_QUERY_NOT_ALLOWED" || r.Data["stream"] != nil {
			t.Errorf("%s: data %s, errors %+v; want PERSISTED_QUERY_NOT_ALLOWED", what, r.Data["stream"], r.Errors)
		}
	}
	runs("listed, by extensions over POST", rawPost(t, srv.addr, "", map[string]any{"extensions": ext(h)}))
	runs("listed, by documentId over POST", rawPost(t, srv.addr, "", map[string]any{"documentId": h}))
	runs("listed, by documentId sha256:<hex> over POST", rawPost(t, srv.addr, "", map[string]any{"documentId": "sha256:" + h}))
	runs("listed, sent whole", rawPost(t, srv.addr, "", map[string]any{"query": listed}))
	_, r := getPersisted(t, srv.addr, url.Values{"extensions": {extJSON(h)}})
	runs("listed, by extensions over GET", r)
	_, r = getPersisted(t, srv.addr, url.Values{"documentId": {h}})
	runs("listed, by documentId over GET", r)

	u := sha256Hex(unlisted)
	refused("unlisted, sent whole", rawPost(t, srv.addr, "", map[string]any{"query": unlisted}))
	refused("unlisted, with its hash", rawPost(t, srv.addr, "", map[string]any{"query": unlisted, "extensions": ext(u)}))
	refused("unknown hash over POST", rawPost(t, srv.addr, "", map[string]any{"extensions": ext(u)}))
	refused("unknown documentId over POST", rawPost(t, srv.addr, "", map[string]any{"documentId": u}))
	_, r = getPersisted(t, srv.addr, url.Values{"extensions": {extJSON(u)}})
	refused("unknown hash over GET", r)
	_, r = getPersisted(t, srv.addr, url.Values{"documentId": {u}})
	refused("unknown documentId over GET", r)
	_, r = getPersisted(t, srv.addr, url.Values{"query": {unlisted}})
	refused("unlisted over GET", r)
	if r := rawPost(t, srv.addr, "", map[string]any{"query": unlisted, "extensions": ext(h)}); r.code() != "PERSISTED_QUERY_HASH_MISMATCH" {
		t.Errorf("an unlisted query under a listed hash: %+v, want PERSISTED_QUERY_HASH_MISMATCH", r.Errors)
	}

	// The Explorer's operations, as it sends them (whole, over POST).
	ran := 0
	var kinds []string
	for _, k := range aggregates.All() {
		kinds = append(kinds, k.Describe().Name)
	}
	docs, err := explorer.Documents(kinds)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		atVersion := strings.HasPrefix(d, "query Explorer"+kinds[0]+"AtVersion")
		if !strings.Contains(d, "query ExplorerAggregateKinds") && !atVersion {
			continue
		}
		ran++
		vars := map[string]any{"category": aggregates.All()[0].Describe().Category, "id": "00000000-0000-4000-8000-000000000000", "version": 1, "after": "0"}
		if strings.Contains(d, "AggregateKinds") {
			vars = nil
		}
		if r := rawPost(t, srv.addr, "", map[string]any{"query": d, "variables": vars}); len(r.Errors) > 0 {
			t.Errorf("the Explorer's %.40q: %+v", d, r.Errors)
		}
	}
	if ran != 2 {
		t.Errorf("ran %d of the Explorer's operations, want 2 (ExplorerAggregateKinds, Explorer%sAtVersion)", ran, kinds[0])
	}

	// Over the WebSocket: an unlisted subscription is refused, the Explorer's live tail runs.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws://"+srv.addr+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Subscribe("unlisted", `subscription { allEvents { position } }`, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Next(20 * time.Second); err != nil || !strings.Contains(string(r.Errors), "PERSISTED_QUERY_NOT_ALLOWED") {
		t.Errorf("an unlisted subscription over WebSocket: %+v %v, want PERSISTED_QUERY_NOT_ALLOWED", r, err)
	}
	live := ""
	for _, d := range docs {
		if strings.HasPrefix(d, "subscription ExplorerLive") {
			live = d
		}
	}
	if live == "" {
		t.Fatal("the Explorer has no ExplorerLive subscription")
	}
	if err := c.Subscribe("live", live, map[string]any{"category": "trusted"}); err != nil {
		t.Fatal(err)
	}
	// Live from the moment the server registers it, which the start message does not wait for.
	waitMetric(t, "http://"+srv.addr+"/metrics", "strata_subscriptions_active", 1)
	ok(t, gql(t, srv.addr, listedAppend, nil), "appendEvents", new(any))
	for {
		r, err := c.Next(20 * time.Second)
		if err != nil {
			t.Fatalf("the Explorer's live tail over WebSocket: %v, want an event", err)
		}
		if r.ID != "live" {
			continue // the unlisted one's complete
		}
		if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"streamId":"trusted-1"`) {
			t.Errorf("the Explorer's live tail over WebSocket: %+v, want the event appended", r)
		}
		break
	}
}

func jsonObject(t *testing.T, key, value string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{key: value})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A --trusted-documents file that is not a JSON object of sha256 → parsing document stops
// serve with an error naming the file and what is wrong.
func TestBadTrustedDocumentsStopServe(t *testing.T) {
	const q = `{ stream(id: "x") { id } }`
	for name, c := range map[string]struct{ content, want string }{
		"not an object":  {`["` + q + `"]`, "must be a JSON object"},
		"not JSON":       {`{"a": `, "must be a JSON object of strings"},
		"wrong hash":     {jsonObject(t, sha256Hex(q+" "), q), "is not the sha256"},
		"does not parse": {`{"` + sha256Hex("{ stream(") + `": "{ stream("}`, "does not parse"},
		"empty":          {`{}`, "lists no document"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, c.content)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--trusted-documents", path}, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": unreachableURL}))
			if err == nil {
				t.Fatal("serve started with a bad --trusted-documents")
			}
			if !strings.Contains(err.Error(), "--trusted-documents "+path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to name --trusted-documents %s and say %q", err, path, c.want)
			}
		})
	}
}
