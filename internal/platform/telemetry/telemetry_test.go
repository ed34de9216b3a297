package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/internal/platform/telemetry"
)

const (
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID    = "00f067aa0ba902b7"
	traceparent = "00-" + traceID + "-" + parentID + "-01"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Without an endpoint, Start builds no exporter: a no-op provider whose spans record nothing.
func TestStartWithoutEndpointIsOff(t *testing.T) {
	for _, vars := range []map[string]string{
		nil,
		{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
	} {
		tr, err := telemetry.Start(t.Context(), env(vars), "")
		if err != nil {
			t.Fatalf("Start(%v): %v", vars, err)
		}
		if tr.Enabled() {
			t.Errorf("Start(%v): enabled, want off", vars)
		}
		if _, ok := tr.Provider().(*sdktrace.TracerProvider); ok {
			t.Errorf("Start(%v) built the SDK's provider", vars)
		}
		_, span := tr.Provider().Tracer("t").Start(t.Context(), "s")
		if span.IsRecording() {
			t.Errorf("Start(%v): spans record", vars)
		}
		span.End()
		if err := tr.Shutdown(t.Context()); err != nil {
			t.Error(err)
		}
	}
}

func TestStartRefusesUnknownSettings(t *testing.T) {
	for _, vars := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_TRACES_EXPORTER": "zipkin"},
	} {
		if tr, err := telemetry.Start(t.Context(), env(vars), ""); err == nil {
			_ = tr.Shutdown(t.Context())
			t.Errorf("Start(%v) succeeded, want an error", vars)
		}
	}
}

// Each configured protocol builds an exporter (nothing is sent until a span ends).
func TestStartBuildsTheConfiguredExporter(t *testing.T) {
	for _, proto := range []string{"", "http/protobuf", "grpc"} {
		tr, err := telemetry.Start(t.Context(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": proto}), "")
		if err != nil {
			t.Fatalf("protocol %q: %v", proto, err)
		}
		if !tr.Enabled() {
			t.Errorf("protocol %q: off, want on", proto)
		}
		if err := tr.Shutdown(t.Context()); err != nil {
			t.Errorf("protocol %q: shutdown: %v", proto, err)
		}
	}
}

func TestExtractJoinsTheCallersTrace(t *testing.T) {
	var got trace.SpanContext
	h := telemetry.Extract(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = trace.SpanContextFromContext(r.Context())
	}))
	for _, tc := range []struct {
		header string
		valid  bool
	}{{traceparent, true}, {"", false}, {"00-garbage-01", false}} {
		got = trace.SpanContext{}
		r := httptest.NewRequest(http.MethodPost, "/query", nil)
		if tc.header != "" {
			r.Header.Set("traceparent", tc.header)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got.IsValid() != tc.valid {
			t.Errorf("traceparent %q: valid %v, want %v", tc.header, got.IsValid(), tc.valid)
		}
		if tc.valid && (got.TraceID().String() != traceID || got.SpanID().String() != parentID || !got.IsRemote() || !got.IsSampled()) {
			t.Errorf("traceparent %q: got %v", tc.header, got)
		}
	}
}

func TestFromPayload(t *testing.T) {
	ctx := telemetry.FromPayload(t.Context(), map[string]any{"traceparent": traceparent, "Authorization": "Bearer x"})
	sc := trace.SpanContextFromContext(ctx)
	if sc.TraceID().String() != traceID || sc.SpanID().String() != parentID || !sc.IsRemote() {
		t.Errorf("span context %v, want the payload's", sc)
	}
	for _, p := range []map[string]any{nil, {"traceparent": 42}, {"traceparent": "nonsense"}} {
		if sc := trace.SpanContextFromContext(telemetry.FromPayload(t.Context(), p)); sc.IsValid() {
			t.Errorf("payload %v: span context %v, want none", p, sc)
		}
	}
}

// A record logged inside a span carries its ids; one outside carries none; groups and
// attributes added to the logger still work.
func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("t").Start(t.Context(), "op")
	logger.InfoContext(ctx, "inside", "k", 1)
	span.End()
	logger.InfoContext(t.Context(), "outside")
	logger.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	var inside map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &inside); err != nil {
		t.Fatal(err)
	}
	if inside["trace_id"] != span.SpanContext().TraceID().String() || inside["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("inside the span: %s, want trace_id %s span_id %s", lines[0], span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}
	if inside["component"] != "test" || inside["k"] != float64(1) {
		t.Errorf("inside the span: %s lost the logger's attributes", lines[0])
	}
	for _, l := range lines[1:] {
		if strings.Contains(l, "trace_id") || strings.Contains(l, "span_id") {
			t.Errorf("outside any span: %s has ids", l)
		}
	}
}

// A traceparent alone (no span of Strata's yet) is a valid span context too: the caller's ids.
func TestLogHandlerWithRemoteParent(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewTextHandler(&buf, nil)))
	logger.InfoContext(telemetry.FromPayload(t.Context(), map[string]any{"traceparent": traceparent}), "joined")
	if !strings.Contains(buf.String(), "trace_id="+traceID) || !strings.Contains(buf.String(), "span_id="+parentID) {
		t.Errorf("log line %q lacks the caller's ids", buf.String())
	}
}
