// Package telemetry sets up OpenTelemetry tracing for a process: an OTLP exporter when the
// standard OTEL_EXPORTER_OTLP_* variables name a collector, nothing at all when they do not; the
// W3C trace context taken from HTTP headers and WebSocket connection_init payloads; and log lines
// that carry the trace and span ids of the work they describe.
//
// The packages that make spans (graph, the runtime, the store) know only the OpenTelemetry API:
// each takes a trace.TracerProvider in its options. This package is where the SDK lives.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName names the service when OTEL_SERVICE_NAME (or service.name in
// OTEL_RESOURCE_ATTRIBUTES) does not.
const DefaultServiceName = "strata"

// Tracing is a process's tracer provider: the SDK's, exporting spans, or a no-op one that makes
// every span free. Shutdown flushes what is still buffered.
type Tracing struct {
	provider trace.TracerProvider
	shutdown func(context.Context) error
	enabled  bool
}

// Provider is the tracer provider to hand to the parts that make spans.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Enabled reports whether spans are recorded and exported: instrumentation that costs something
// even around a no-op span (the SQL tracer) is installed only then.
func (t *Tracing) Enabled() bool { return t.enabled }

// Shutdown exports the spans still buffered and stops the exporter; ctx bounds the wait.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Off is tracing switched off: a no-op provider.
func Off() *Tracing { return &Tracing{provider: noop.NewTracerProvider()} }

// WithProvider is tracing through tp, an SDK provider the caller made (tests, with an in-memory
// exporter); Shutdown shuts it down.
func WithProvider(tp *sdktrace.TracerProvider) *Tracing {
	return &Tracing{provider: tp, shutdown: tp.Shutdown, enabled: true}
}

// configured reports whether getenv names an OTLP endpoint for traces: without one, Strata
// exports nothing and builds no exporter (the SDK's own default, localhost:4318, would have
// every server without a collector retry a dead port).
func configured(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Start sets up tracing from the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT switch it on; OTEL_EXPORTER_OTLP_PROTOCOL (or its _TRACES_
// form) picks http/protobuf (the default) or grpc; OTEL_TRACES_EXPORTER=none switches it off
// again; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES describe the service; the exporters read
// the rest (headers, timeouts, certificates, compression) themselves. Sampling is the SDK's
// default, parent-based: a request whose traceparent is not sampled records nothing.
//
// The exporters read the process environment; getenv is consulted only for the switch and the
// protocol, and is os.Getenv in the binary.
func Start(ctx context.Context, getenv func(string) string, version string) (*Tracing, error) {
	if !configured(getenv) {
		return Off(), nil
	}
	switch kind := getenv("OTEL_TRACES_EXPORTER"); kind {
	case "", "otlp":
	case "none":
		return Off(), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: Strata exports traces by OTLP only (otlp, or none)", kind)
	}
	exporter, err := newExporter(ctx, getenv)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, getenv, version)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return WithProvider(tp), nil
}

// newExporter is the OTLP exporter of the configured protocol.
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: Strata exports traces over http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	return exp, nil
}

// newResource describes this process: service.name (OTEL_SERVICE_NAME, else "strata"), its
// version, and whatever OTEL_RESOURCE_ATTRIBUTES adds. The SDK reads both variables from the
// process environment; the name is applied from getenv too, so that it wins over the default.
func newResource(ctx context.Context, getenv func(string) string, version string) (*resource.Resource, error) {
	attrs := []resource.Option{
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	}
	if version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	if name := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); name != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceName(name)))
	}
	res, err := resource.New(ctx, attrs...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}

// propagator reads and writes W3C trace context (traceparent, tracestate).
func propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Extract returns next with the trace context of each request's traceparent header in its
// context, so that the spans the request makes join the caller's trace. A request without one
// (or with a malformed one) starts a trace of its own.
func Extract(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// FromPayload returns ctx with the trace context a WebSocket connection_init payload carries
// under "traceparent" (and "tracestate"), as strings; ctx unchanged without one.
func FromPayload(ctx context.Context, payload map[string]any) context.Context {
	tp, _ := payload["traceparent"].(string)
	if tp == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": tp}
	if ts, ok := payload["tracestate"].(string); ok && ts != "" {
		carrier["tracestate"] = ts
	}
	return propagator().Extract(ctx, carrier)
}
