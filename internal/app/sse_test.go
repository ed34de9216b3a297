package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// sseClientDir is web/sse-client: the npm graphql-sse client, pinned by its package-lock.json,
// and the script that drives it.
const sseClientDir = "../../web/sse-client"

// sseMessage is one message of a text/event-stream answer: an event with its data, or a
// comment.
type sseMessage struct {
	event, data, comment string
}

// sseStream reads an SSE answer message by message.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// openSSE sends a GraphQL request asking for text/event-stream, through client (nil: one that
// keeps no connection), with a bearer token unless it is "".
func openSSE(ctx context.Context, client *http.Client, addr, token, query string, vars map[string]any) (*sseStream, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}, nil
}

// mustOpenSSE is openSSE for a request the server must answer with a stream.
func mustOpenSSE(t *testing.T, addr, token, query string, vars map[string]any) *sseStream {
	t.Helper()
	s, err := openSSE(t.Context(), nil, addr, token, query, vars)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	if ct := s.resp.Header.Get("Content-Type"); s.resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(s.resp.Body)
		t.Fatalf("status %d, Content-Type %q, want 200 text/event-stream: %s", s.resp.StatusCode, ct, b)
	}
	return s
}

func (s *sseStream) close() { _ = s.resp.Body.Close() }

// next reads the next message; io.EOF when the answer has ended.
func (s *sseStream) next() (sseMessage, error) {
	var m sseMessage
	var data []string
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if !seen {
				continue
			}
			m.data = strings.Join(data, "\n")
			return m, nil
		case strings.HasPrefix(line, ":"):
			m.comment = strings.TrimSpace(strings.TrimPrefix(line, ":"))
		case strings.HasPrefix(line, "event:"):
			m.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
		seen = true
	}
}

// nextEvent skips comments to the next event; it fails t when the stream ends first.
func (s *sseStream) nextEvent(t *testing.T) sseMessage {
	t.Helper()
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("the stream ended before its next event: %v", err)
		}
		if m.event != "" {
			return m
		}
	}
}

// result decodes a next event's data.
func (m sseMessage) result(t *testing.T) gqlResponse {
	t.Helper()
	if m.event != "next" {
		t.Fatalf("event %q (%s), want next", m.event, m.data)
	}
	var r gqlResponse
	if err := json.Unmarshal([]byte(m.data), &r); err != nil {
		t.Fatalf("next event's data %q: %v", m.data, err)
	}
	return r
}

// endsWithout reads the stream to its end, which must come without complete and after a
// comment containing why; it returns the events it read on the way.
func (s *sseStream) endsWithout(t *testing.T, why string) (events int) {
	t.Helper()
	var comments []string
	for {
		m, err := s.next()
		if err != nil {
			break // the end, clean or cut
		}
		switch m.event {
		case "":
			comments = append(comments, m.comment)
		case "complete":
			t.Fatalf("the stream completed; want it ended without complete (%q)", why)
		default:
			events++
		}
	}
	if why != "" && !strings.Contains(strings.Join(comments, "\n"), why) {
		t.Errorf("the stream's comments %q do not say %q", comments, why)
	}
	return events
}

// An SSE request without a credential is refused; a principal's streams count against its
// connection cap together with its WebSockets; a role too weak gets FORBIDDEN as a result;
// a token that expires ends its stream.
func TestSSEAuthenticationAndConnectionCap(t *testing.T) {
	s := startAuthServer(t) // --max-connections-per-principal 2
	a := s.addr
	const sub = `subscription { events(category: "sseauth") { position } }`

	noToken, err := openSSE(t.Context(), nil, a, "", sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(noToken.resp.Body)
	noToken.close()
	if noToken.resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "UNAUTHENTICATED") || noToken.resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %s, want 401 UNAUTHENTICATED with WWW-Authenticate", noToken.resp.StatusCode, body)
	}

	// A mutation is refused by role, in the stream: one next with the error, then complete.
	m := mustOpenSSE(t, a, s.token(t, "rita", "reader", time.Hour), registerMutation, nil)
	if r := m.nextEvent(t).result(t); r.code() != "FORBIDDEN" {
		t.Errorf("a reader's mutation over SSE: %+v, want FORBIDDEN", r.Errors)
	}
	if e := m.nextEvent(t); e.event != "complete" {
		t.Errorf("after the refusal: %q, want complete", e.event)
	}
	m.close()

	reader := s.token(t, "rhea", "reader", time.Hour)
	// Two streams take the principal's two places: a third stream, or a WebSocket, is refused.
	first := mustOpenSSE(t, a, reader, sub, nil)
	_ = mustOpenSSE(t, a, reader, sub, nil)
	third, err := openSSE(t.Context(), nil, a, reader, sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(third.resp.Body)
	third.close()
	if third.resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too many connections") {
		t.Errorf("third stream of one principal: %d %s, want 429", third.resp.StatusCode, body)
	}
	_, err = wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.TransportWS, nil, map[string]any{"Authorization": "Bearer " + reader})
	var closed *wsclient.ErrClosed
	if !errors.As(err, &closed) || closed.Code != 4429 {
		t.Errorf("a WebSocket beside two streams of one principal: %v, want a close with 4429", err)
	}
	// Another principal is not affected.
	other := mustOpenSSE(t, a, s.token(t, "otto", "reader", time.Hour), `{ __typename }`, nil)
	if r := other.nextEvent(t).result(t); len(r.Errors) > 0 {
		t.Errorf("another principal's query over SSE: %+v", r.Errors)
	}
	// Ending a stream gives its place back.
	first.close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		again, err := openSSE(t.Context(), nil, a, reader, `{ __typename }`, nil)
		if err != nil {
			t.Fatal(err)
		}
		status := again.resp.StatusCode
		again.close()
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the place of an ended stream was never given back: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A token that expires while its subscription runs ends the stream, saying why.
	short := mustOpenSSE(t, a, s.token(t, "sue", "reader", 2*time.Second), sub, nil)
	short.endsWithout(t, "expired")
}

// Queries, mutations and subscriptions over SSE, and the requests GraphQL refuses, each
// answered as graphql-sse's distinct connections mode has it.
func TestSSEOperationsAndRefusals(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr

	// A mutation: one next with its result, then complete.
	m := mustOpenSSE(t, a, "", `mutation { appendEvents(streamId: "ssefirst-1", events: [{type: "A", data: {}}]) { position } }`, nil)
	var appended struct{ Position string }
	ok(t, m.nextEvent(t).result(t), "appendEvents", &appended)
	if e := m.nextEvent(t); e.event != "complete" {
		t.Errorf("after a mutation's result: %q, want complete", e.event)
	}
	if h := m.resp.Header.Get("Cache-Control"); h != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", h)
	}

	// Refused before running: a field that does not exist, a bad position, a limit.
	for _, c := range []struct{ name, query, code string }{
		{"unknown field", `subscription { nope }`, "GRAPHQL_VALIDATION_FAILED"},
		{"syntax", `subscription {`, "GRAPHQL_PARSE_FAILED"},
		{"bad after", `subscription { events(after: "zzz") { position } }`, "BAD_USER_INPUT"},
	} {
		s := mustOpenSSE(t, a, "", c.query, nil)
		if r := s.nextEvent(t).result(t); r.code() != c.code {
			t.Errorf("%s: %+v, want %s", c.name, r.Errors, c.code)
		}
		if e := s.nextEvent(t); e.event != "complete" {
			t.Errorf("%s: after the error %q, want complete", c.name, e.event)
		}
		s.close()
	}
	// Not a GraphQL request at all: answered as over plain HTTP.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+a+"/query", strings.NewReader(`{"variables": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a body without query: %d, want 400", resp.StatusCode)
	}
	// GET: a subscription in the URL (as EventSource sends it) runs; a mutation does not.
	get := func(query string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+a+"/query?query="+url.QueryEscape(query), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	if resp := get(`mutation { appendEvents(streamId: "x-1", events: [{type: "A", data: {}}]) { position } }`); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("a mutation over GET with SSE: %d, want 405", resp.StatusCode)
	}
	resp = get(`subscription { events(streamId: "ssefirst-1", after: "` + appended.Position + `") { type } }`)
	g := &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
	appendVia(t, a, "ssefirst-1", "B")
	if r := g.nextEvent(t).result(t); !strings.Contains(string(r.Data["events"]), `"B"`) {
		t.Errorf("a subscription over GET: %s %+v, want the event B", r.Data["events"], r.Errors)
	}
}

// A client that stops reading is cut off after the write timeout, and counted, while a fast
// one on the same server gets every event.
func TestSSESlowConsumerIsCutOff(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url, "--subscriber-buffer", "16", "--write-timeout", "500ms")
	a := srv.addr
	// A small receive buffer, set before the connection opens, makes the server's writes back
	// up soon after its own send buffer.
	small := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		},
	}).DialContext}}
	start := appendVia(t, a, "ssestallmark-1", "Start")
	stalled, err := openSSE(t.Context(), small, a, "", `subscription($a: String) { events(category: "ssestall", after: $a) { position data } }`, map[string]any{"a": start})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.close()
	// One warm-up event read proves the subscription runs; then the client reads no more.
	appendVia(t, a, "ssestall-warm", "Warm")
	stalled.nextEvent(t).result(t)
	warm := appendVia(t, a, "ssestallmark-2", "Warm")
	fast := mustOpenSSE(t, a, "", `subscription($a: String) { events(category: "ssestall", after: $a) { position } }`, map[string]any{"a": warm})

	// Events big enough to fill the socket buffers between the server and the stalled client,
	// written straight to the store (as another replica would, announcing them with NOTIFY).
	pool := dbtest.PoolFor(t, url, 2)
	store := eventstore.New(pool, eventstore.Options{})
	data, err := json.Marshal(map[string]string{"pad": strings.Repeat("x", 256<<10)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		if _, err := store.Append(t.Context(), fmt.Sprintf("ssestall-%d", i%4), eventstore.Any(), []eventstore.EventData{{Type: "Big", Data: data}}); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), `SELECT pg_notify('strata_events', '')`); err != nil {
			t.Fatal(err)
		}
	}
	want := positionsAtLeast(t, a, warm, "ssestall", n)
	var got []liveEvent
	for range n {
		var d struct{ Events liveEvent }
		ok(t, fast.nextEvent(t).result(t), "events", &d.Events)
		got = append(got, d.Events)
	}
	checkExactlyOnce(t, "fast subscriber", got, want)

	waitMetric(t, "http://"+a+"/metrics", "strata_slow_consumers_dropped_total", 1)
	if !strings.Contains(srv.stderr.String(), "subscriber dropped: sse write timed out") {
		t.Errorf("the drop was not logged; stderr:\n%s", srv.stderr.String())
	}
	// Reading now finds what was buffered, then the end, without complete.
	if events := stalled.endsWithout(t, ""); events >= n {
		t.Errorf("the stalled subscriber received all %d events; it should have been cut off", events)
	}
	// The server still serves.
	if r := gql(t, a, `{ __typename }`, nil); len(r.Errors) > 0 {
		t.Errorf("a query after the drop: %+v", r.Errors)
	}
}

// A stream outlives the read timeout, kept alive by comments, and the server's stop ends
// every open stream without complete, leaving nothing running.
func TestSSEStreamsOutliveReadTimeoutAndEndAtShutdown(t *testing.T) {
	verifyNoLeaks(t)
	srv := startServeOn(t, dbtest.URL(t), "--read-timeout", "200ms", "--ws-keepalive", "150ms")
	a := srv.addr
	start := appendVia(t, a, "ssestopmark-1", "Start")
	const sub = `subscription($a: String) { events(category: "ssestop", after: $a) { type } }`
	streams := []*sseStream{
		mustOpenSSE(t, a, "", sub, map[string]any{"a": start}),
		mustOpenSSE(t, a, "", sub, map[string]any{"a": start}),
	}
	// Three keep-alives make more than the read timeout; an event still arrives after them.
	for i, s := range streams {
		for k := 0; k < 3; {
			m, err := s.next()
			if err != nil {
				t.Fatalf("stream %d ended while quiet: %v", i, err)
			}
			if m.comment == "keep-alive" {
				k++
			}
		}
	}
	appendVia(t, a, "ssestop-1", "Late")
	for i, s := range streams {
		if r := s.nextEvent(t).result(t); !strings.Contains(string(r.Data["events"]), "Late") {
			t.Errorf("stream %d after the keep-alives: %s %+v", i, r.Data["events"], r.Errors)
		}
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("serve: %v; stderr:\n%s", err, srv.stderr.String())
	}
	for _, s := range streams {
		s.endsWithout(t, "server shutting down")
		s.close()
	}
	if !strings.Contains(srv.stderr.String(), "sse_streams_ended=2") {
		t.Errorf("the shutdown did not end both streams; stderr:\n%s", srv.stderr.String())
	}
}

// sseClient returns node's path and the path of a script in web/sse-client, failing t (never
// skipping) when node is missing; it installs the pinned npm packages when they are not.
func sseClient(t *testing.T, name string) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the graphql-sse client tests run Node.js: %v; install Node.js 18 or later and npm (.ci/run does)", err)
	}
	for _, pkg := range []string{"graphql", "graphql-sse"} {
		installNodePackages(t, sseClientDir, pkg)
	}
	script, err = filepath.Abs(filepath.Join(sseClientDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return node, script
}

// A subscription the server refuses before it runs reaches the graphql-sse client's subscriber
// as a result with errors, then completes: no retries, no network error.
func TestSSEClientGetsRefusalAsResult(t *testing.T) {
	node, script := sseClient(t, "sse-refused.mjs")
	srv := startServeOn(t, dbtest.URL(t))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, "http://"+srv.addr+"/query", `subscription { events { nope } }`)
	cmd.Dir = filepath.Dir(script)
	cmd.WaitDelay = 5 * time.Second
	var stderr syncBuffer
	cmd.Stderr = &stderr
	// A refusal the client took for a network failure (a 4xx) would be retried five times with
	// backoff, then reported to error(): the script exits 1.
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the client failed: %v; stdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[1] != "complete" {
		t.Fatalf("the client printed %q, want one result then complete", lines)
	}
	var r gqlResponse
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || r.code() != "GRAPHQL_VALIDATION_FAILED" || r.Data != nil {
		t.Errorf("the result %s: want the validation error alone (%v)", lines[0], err)
	}
}

// The npm graphql-sse client (distinct connections mode), run by Node against the real
// `strata serve` with its token in a header, gets the events appended before it subscribed
// through catch-up and the rest live; while writers keep appending, it drops its subscription
// and subscribes again with after set to the last position it received; what it received in
// all is every event of the category once, in the global order.
func TestSSEClientCatchesUpGoesLiveAndResumes(t *testing.T) {
	node, script := sseClient(t, "sse-client.mjs")
	const readerKey, writerKey = "sse-reader-key", "sse-writer-key"
	srv := startServeOn(t, dbtest.URL(t), "--api-keys",
		"sser:reader:"+auth.HashAPIKey(readerKey)+",ssew:writer:"+auth.HashAPIKey(writerKey))
	a := srv.addr
	appendAs := func(stream, typ string) string {
		status, r := gqlAs(t, a, writerKey, `mutation($s: String!, $t: String!) { appendEvents(streamId: $s, events: [{type: $t, data: {}}]) { position } }`, map[string]any{"s": stream, "t": typ})
		var res struct{ Position string }
		if status != http.StatusOK || len(r.Errors) > 0 || json.Unmarshal(r.Data["appendEvents"], &res) != nil {
			t.Errorf("append to %s: %d %+v", stream, status, r.Errors)
		}
		return res.Position
	}
	marker := appendAs("ssemark-1", "Marker")
	const before, dropAfter = 5, 15
	for i := range before {
		appendAs("ssenode-0", fmt.Sprintf("Before%d", i+1))
	}

	client := startNode(t, 90*time.Second, []string{"STRATA_TOKEN=" + readerKey}, node, script, "http://"+a+"/query", marker, "ssenode", fmt.Sprint(dropAfter))
	ctx := client.ctx

	// Writers start once the client has its first event, and append until it has resubscribed
	// and they have each appended ten more.
	var (
		writers     sync.WaitGroup
		resubscribe = make(chan struct{})
		appended    atomic.Int64
	)
	startWriters := func() {
		for w := range 4 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				after := 0
				for i := 0; after < 10; i++ {
					if ctx.Err() != nil {
						return
					}
					appendAs(fmt.Sprintf("ssenode-%d", w+1), fmt.Sprintf("Live%d", i))
					appended.Add(1)
					select {
					case <-resubscribe:
						after++
					default:
					}
				}
			}()
		}
	}
	var got []liveEvent
	resubscribed, stopped := false, false
	writersDone := make(chan struct{})
	for line := range client.lines {
		var msg struct {
			liveEvent
			Resubscribe *string `json:"resubscribe"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil {
			t.Errorf("the client printed %q: %v", line, err)
			continue
		}
		if msg.Resubscribe != nil {
			if resubscribed {
				t.Errorf("the client resubscribed twice")
				continue
			}
			resubscribed = true
			if len(got) == 0 || *msg.Resubscribe != got[len(got)-1].Position {
				t.Errorf("the client resubscribed after %s, not the last position it received", *msg.Resubscribe)
			}
			close(resubscribe)
			// Once the writers are done, a Stop event, last in the global order, tells the
			// client it has everything.
			go func() {
				writers.Wait()
				close(writersDone)
				appendAs("ssenode-stop", "Stop")
			}()
			continue
		}
		if len(got) == 0 {
			startWriters()
		}
		got = append(got, msg.liveEvent)
		if msg.Type == "Stop" {
			stopped = true
		}
	}
	waitErr := client.wait()
	if !resubscribed {
		close(resubscribe)
	}
	writers.Wait()
	if waitErr != nil || !stopped {
		t.Fatalf("the client failed (stop seen: %v): %v (context: %v); stderr:\n%s", stopped, waitErr, context.Cause(ctx), client.stderr.String())
	}
	<-writersDone
	t.Logf("the writers appended %d events while the client ran; it resubscribed after %d", appended.Load(), dropAfter)
	if int(appended.Load())+before+1 <= dropAfter {
		t.Fatalf("only %d events in all: the client cannot have dropped mid-way", appended.Load())
	}

	// Every event of the category, in the global order, read by the writer's key.
	var want []string
	after := marker
	for {
		var c struct {
			Edges    []struct{ Cursor string }
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
		_, r := gqlAs(t, a, writerKey, `query($a: String) { allEvents(first: 1000, after: $a, category: "ssenode") { edges { cursor } pageInfo { hasNextPage endCursor } } }`, map[string]any{"a": after})
		ok(t, r, "allEvents", &c)
		for _, e := range c.Edges {
			want = append(want, e.Cursor)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = c.PageInfo.EndCursor
	}
	if len(want) != before+int(appended.Load())+1 {
		t.Errorf("the log holds %d events of the category, want %d", len(want), before+int(appended.Load())+1)
	}
	checkExactlyOnce(t, "graphql-sse client across its resubscription", got, want)
	if t.Failed() {
		t.Logf("client stderr:\n%s", client.stderr.String())
	}
}
