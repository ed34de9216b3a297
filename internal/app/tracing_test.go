package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/strata-es/strata/internal/platform/telemetry"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
	"github.com/strata-es/strata/internal/transport/cli"
)

// The caller's trace context, as a client or a proxy in front of Strata sends it.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// startTracedServe runs `strata serve` on url, tracing through tracing (nil: from vars, as the
// binary does from its environment); the test's end stops it.
func startTracedServe(t *testing.T, url string, tracing *telemetry.Tracing, vars map[string]string, extra ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{addr: freeAddr(t), stderr: &syncBuffer{}, cancel: cancel, result: make(chan error, 1)}
	args := append([]string{"--addr", r.addr, "--consistency-timeout", "20s"}, extra...)
	all := map[string]string{"DATABASE_URL": url}
	for k, v := range vars {
		all[k] = v
	}
	env := &cli.Env{Stdout: &syncBuffer{}, Stderr: r.stderr, Getenv: envOf(all)}
	go func() { r.result <- serve(ctx, env, args, tracing) }()
	t.Cleanup(func() { _ = r.stop(t) })
	r.waitReady(t)
	return r
}

// gqlTraced posts a GraphQL request with a traceparent header.
func gqlTraced(t *testing.T, addr, traceparent, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
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

const registerTraced = `mutation Register($n: String!, $e: String!) { registerUser(name: $n, email: $e) { user { id } position } }`

// spans is what an in-memory exporter holds, with lookups.
type spans tracetest.SpanStubs

func (s spans) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, sp := range s {
		if sp.Name == name {
			out = append(out, sp)
		}
	}
	return out
}

func (s spans) one(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	got := s.named(name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %s", len(got), name, s)
	}
	return got[0]
}

func (s spans) childrenOf(parent tracetest.SpanStub) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, sp := range s {
		if sp.Parent.SpanID() == parent.SpanContext.SpanID() && sp.SpanContext.TraceID() == parent.SpanContext.TraceID() {
			out = append(out, sp)
		}
	}
	return out
}

func (s spans) String() string {
	var b strings.Builder
	for _, sp := range s {
		b.WriteString("\n  " + sp.Name + " (" + sp.InstrumentationScope.Name + ") " + sp.SpanContext.SpanID().String() + " parent " + sp.Parent.SpanID().String())
	}
	return b.String()
}

func attr(sp tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range sp.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// One mutation over real HTTP with a traceparent makes one tree in the caller's trace: the
// operation's span under the caller's, the command's under it, the append's under the
// command, SQL statements under the append; and a projector's batch applies the event, in a
// trace of its own.
func TestTracingSpanTreeOfAMutation(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startTracedServe(t, dbtest.URL(t), telemetry.WithProvider(tp), nil)
	r := gqlTraced(t, s.addr, callerParent, registerTraced, map[string]any{"n": "Ada", "e": "ada@example.com"})
	if len(r.Errors) > 0 {
		t.Fatalf("registerUser: %+v", r.Errors)
	}

	var all spans
	deadline := time.Now().Add(20 * time.Second)
	for {
		all = spans(exp.GetSpans())
		batch := slices.IndexFunc(all, func(sp tracetest.SpanStub) bool {
			return strings.HasPrefix(sp.Name, "projection.batch ") && attr(sp, "strata.events_applied").AsInt64() > 0
		})
		if batch >= 0 {
			if p := all[batch]; p.Parent.IsValid() || attr(p, "strata.projection").AsString() == "" {
				t.Errorf("projector batch span %s: parent %v, projection %q; want a root naming its projection", p.Name, p.Parent, attr(p, "strata.projection").AsString())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no projector batch span applied the event within 20s; spans: %s", all)
		}
		time.Sleep(50 * time.Millisecond)
	}

	op := all.one(t, "mutation Register")
	if op.SpanContext.TraceID().String() != callerTrace || op.Parent.SpanID().String() != callerSpan || !op.Parent.IsRemote() {
		t.Errorf("operation span: trace %s parent %s (remote %v), want the caller's %s %s",
			op.SpanContext.TraceID(), op.Parent.SpanID(), op.Parent.IsRemote(), callerTrace, callerSpan)
	}
	if attr(op, "graphql.operation.type").AsString() != "mutation" || attr(op, "graphql.operation.name").AsString() != "Register" {
		t.Errorf("operation span attributes %v", op.Attributes)
	}
	cmd := all.one(t, "command registerUser")
	if cmd.Parent.SpanID() != op.SpanContext.SpanID() {
		t.Errorf("command span's parent %s, want the operation's %s; spans: %s", cmd.Parent.SpanID(), op.SpanContext.SpanID(), all)
	}
	appendSpan := all.one(t, "eventstore.append")
	if appendSpan.Parent.SpanID() != cmd.SpanContext.SpanID() {
		t.Errorf("append span's parent %s, want the command's %s; spans: %s", appendSpan.Parent.SpanID(), cmd.SpanContext.SpanID(), all)
	}
	// registerUser writes the user's event, tagged with the address it takes, under a
	// condition on the read of the address's holders.
	if got := attr(appendSpan, "strata.events_written").AsInt64(); got != 1 {
		t.Errorf("append span: strata.events_written %d, want 1", got)
	}
	// The append's statements: one pipeline (BEGIN, the locks, the condition's check, the write,
	// COMMIT) traced as a batch, with placeholders (arguments, which hold payloads, are not
	// recorded).
	var sql []string
	withArgs := 0
	for _, sp := range all.childrenOf(appendSpan) {
		if sp.InstrumentationScope.Name == "github.com/exaring/otelpgx" && sp.Name != "pool.acquire" {
			sql = append(sql, sp.Name)
		}
		text := attr(sp, "db.query.text").AsString()
		if strings.Contains(text, "$1") {
			withArgs++
		}
		if strings.Contains(text, "ada@example.com") {
			t.Errorf("SQL span %s holds a value of the request: %s", sp.Name, text)
		}
	}
	if !slices.Contains(sql, "batch start") {
		t.Errorf("SQL spans under the append: %v (%d with arguments), want the pipeline's batch; spans: %s", sql, withArgs, all)
	}
	// Every span of the request is in the caller's trace; the projector's, in the batch's.
	batches := map[string]bool{}
	for _, sp := range all {
		if strings.HasPrefix(sp.Name, "projection.batch ") {
			batches[sp.SpanContext.TraceID().String()] = true
		}
	}
	for _, sp := range all {
		if trace := sp.SpanContext.TraceID().String(); trace != callerTrace && !batches[trace] {
			t.Errorf("span %s is in trace %s, neither the caller's nor a projector batch's", sp.Name, trace)
		}
	}
}

// A WebSocket connection_init payload's traceparent makes the connection's operations children
// of the caller's span (browsers cannot set headers on a WebSocket).
func TestTracingWebSocketTraceparentInConnectionInit(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startTracedServe(t, dbtest.URL(t), telemetry.WithProvider(tp), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws://"+s.addr+"/query", wsclient.TransportWS, nil, map[string]any{"traceparent": callerParent})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Subscribe("1", registerTraced, map[string]any{"n": "Ada", "e": "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Next(10 * time.Second)
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("registerUser over the WebSocket: %+v, %v", res, err)
	}
	all := spans(exp.GetSpans())
	op := all.one(t, "mutation Register")
	if op.SpanContext.TraceID().String() != callerTrace || op.Parent.SpanID().String() != callerSpan {
		t.Errorf("operation span: trace %s parent %s, want the payload's %s %s", op.SpanContext.TraceID(), op.Parent.SpanID(), callerTrace, callerSpan)
	}
	if cmd := all.one(t, "command registerUser"); cmd.Parent.SpanID() != op.SpanContext.SpanID() {
		t.Errorf("command span's parent %s, want the operation's %s", cmd.Parent.SpanID(), op.SpanContext.SpanID())
	}
}

// The log lines of a traced request carry its trace id, and the operation's line the span id of
// the operation's span.
func TestTracingLogLinesCarryTraceIDs(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startTracedServe(t, dbtest.URL(t), telemetry.WithProvider(tp), nil, "--log-format", "json")
	if r := gqlTraced(t, s.addr, callerParent, registerTraced, map[string]any{"n": "Ada", "e": "ada@example.com"}); len(r.Errors) > 0 {
		t.Fatalf("registerUser: %+v", r.Errors)
	}
	op := spans(exp.GetSpans()).one(t, "mutation Register")
	want := map[string]string{
		"graphql operation": op.SpanContext.SpanID().String(), // logged inside the operation's span
		"http request":      callerSpan,                       // logged around it: the caller's span
	}
	found := map[string]bool{}
	waitUntil(t, "the request's log lines", 10*time.Second, func() bool {
		for line := range strings.SplitSeq(s.stderr.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			msg, _ := rec["msg"].(string)
			spanID, isWanted := want[msg]
			if !isWanted || rec["path"] != nil && rec["path"] != "/query" {
				continue
			}
			if rec["trace_id"] != callerTrace || rec["span_id"] != spanID {
				t.Errorf("log line %s: trace_id %v span_id %v, want %s %s", msg, rec["trace_id"], rec["span_id"], callerTrace, spanID)
			}
			found[msg] = true
		}
		return len(found) == len(want)
	})
	// Lines of no request (start-up) carry no ids.
	for line := range strings.SplitSeq(s.stderr.String(), "\n") {
		if strings.Contains(line, `"strata serving"`) && strings.Contains(line, "trace_id") {
			t.Errorf("start-up line %s carries a trace id", line)
		}
	}
}

// collector is a tiny OTLP/HTTP receiver: it keeps the export requests POSTed to /v1/traces.
type collector struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
	bad      []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	var req coltracepb.ExportTraceServiceRequest
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/v1/traces":
		c.bad = append(c.bad, r.Method+" "+r.URL.Path)
	case r.Header.Get("Content-Type") != "application/x-protobuf":
		c.bad = append(c.bad, "content type "+r.Header.Get("Content-Type"))
	case err != nil:
		c.bad = append(c.bad, err.Error())
	case proto.Unmarshal(body, &req) != nil:
		c.bad = append(c.bad, "undecodable body")
	default:
		c.requests = append(c.requests, &req)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// spans returns the names of the spans received, by the service.name of their resource.
func (c *collector) spans() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for _, req := range c.requests {
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					out[service] = append(out[service], sp.GetName())
				}
			}
		}
	}
	return out
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, serve exports its spans by OTLP over HTTP (protobuf),
// under OTEL_SERVICE_NAME, and flushes them when it stops.
func TestTelemetryExportsOTLP(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_SERVICE_NAME": "strata-otlp-test"}
	for k, v := range vars { // the exporter reads the process's environment
		t.Setenv(k, v)
	}
	s := startTracedServe(t, dbtest.URL(t), nil, vars)
	if r := gqlTraced(t, s.addr, callerParent, registerTraced, map[string]any{"n": "Ada", "e": "ada@example.com"}); len(r.Errors) > 0 {
		t.Fatalf("registerUser: %+v", r.Errors)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v; stderr:\n%s", err, s.stderr.String())
	}
	got := col.spans()
	names := got["strata-otlp-test"]
	for _, want := range []string{"mutation Register", "command registerUser", "eventstore.append"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q exported under service strata-otlp-test; received %v", want, got)
		}
	}
	if len(got) != 1 {
		t.Errorf("spans under services %v, want strata-otlp-test only", got)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.bad) > 0 {
		t.Errorf("the collector refused: %v", col.bad)
	}
	if !strings.Contains(s.stderr.String(), "tracing: exporting spans by OTLP") {
		t.Errorf("serve did not say it exports spans; stderr:\n%s", s.stderr.String())
	}
}

// Without the variables, serve builds no exporter and says nothing of tracing; a request with a
// traceparent is served as any other, and its log lines still carry the caller's ids (no span
// of Strata's is made), so that logs join the caller's trace.
func TestTelemetryOffWithoutEndpoint(t *testing.T) {
	t.Parallel()
	s := startTracedServe(t, dbtest.URL(t), nil, map[string]string{"OTEL_SERVICE_NAME": "strata-otlp-test"})
	if r := gqlTraced(t, s.addr, callerParent, registerTraced, map[string]any{"n": "Ada", "e": "ada@example.com"}); len(r.Errors) > 0 {
		t.Fatalf("registerUser: %+v", r.Errors)
	}
	waitUntil(t, "the operation's log line", 10*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), "graphql operation")
	})
	for line := range strings.SplitSeq(s.stderr.String(), "\n") {
		if strings.Contains(line, "graphql operation") && !strings.Contains(line, "trace_id="+callerTrace+" span_id="+callerSpan) {
			t.Errorf("operation log line %q lacks the caller's trace_id and span_id", line)
		}
	}
	if strings.Contains(s.stderr.String(), "tracing") {
		t.Errorf("serve mentions tracing with no endpoint set; stderr:\n%s", s.stderr.String())
	}
}
