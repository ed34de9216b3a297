package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/internal/transport/reqlog"
)

// tracing makes a span for each GraphQL operation that runs, named as OpenTelemetry's
// conventions name it ("mutation registerUser", or "mutation" alone for an anonymous one), with
// graphql.operation.type and .name. Its parent is the trace context the request carried
// (traceparent: telemetry.Extract for HTTP, the connection_init payload for a WebSocket), so the
// operation joins the caller's trace; the commands, appends and SQL statements it leads to are
// its children. Fields are not traced: a span per resolved field would cost more than most
// fields do. A subscription's span covers its start (authorization, the resolver that subscribes)
// and ends there: the events it then sends over hours are not one unit of work.
type tracing struct {
	tracer trace.Tracer
}

const tracerName = "github.com/strata-es/strata/graph"

// Attributes of the operation spans besides the conventional ones.
const (
	attrRequestID = attribute.Key("strata.request_id")
	attrOutcome   = attribute.Key("strata.outcome") // "ok" or the first error's code
)

func newTracing(tp trace.TracerProvider) tracing {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tracing{tracer: tp.Tracer(tracerName)}
}

var (
	_ graphql.HandlerExtension     = tracing{}
	_ graphql.OperationInterceptor = tracing{}
)

func (tracing) ExtensionName() string                   { return "Tracing" }
func (tracing) Validate(graphql.ExecutableSchema) error { return nil }

func (t tracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	typ, name := operationType(oc), operationName(oc)
	spanName := typ
	if name != "" {
		spanName = typ + " " + name
	}
	ctx, span := t.tracer.Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		switch typ {
		case "query":
			span.SetAttributes(semconv.GraphQLOperationTypeQuery)
		case "mutation":
			span.SetAttributes(semconv.GraphQLOperationTypeMutation)
		case "subscription":
			span.SetAttributes(semconv.GraphQLOperationTypeSubscription)
		}
		if name != "" {
			span.SetAttributes(semconv.GraphQLOperationName(name))
		}
		if id := reqlog.ID(ctx); id != "" {
			span.SetAttributes(attrRequestID.String(id))
		}
	}
	responses := next(ctx)
	if typ == "subscription" {
		span.End()
		return responses
	}
	done := false
	return func(ctx context.Context) *graphql.Response {
		if done {
			return responses(ctx)
		}
		done = true
		resp := responses(trace.ContextWithSpan(ctx, span))
		endOperation(span, resp)
		return resp
	}
}

// endOperation ends an operation's span with its outcome: the server's own failures mark it
// failed; what the client caused (bad input, a conflict, a refusal) is only noted.
func endOperation(span trace.Span, resp *graphql.Response) {
	if span.IsRecording() {
		outcome := Outcome(resp)
		span.SetAttributes(attrOutcome.String(outcome))
		switch outcome {
		case CodeInternal, CodeUnavailable, CodeTimeout:
			span.SetStatus(codes.Error, resp.Errors[0].Message)
		}
	}
	span.End()
}
