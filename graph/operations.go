package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/strata-es/strata/internal/platform/metrics"
	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/transport/reqlog"
)

// operations sees every GraphQL operation end and reports it twice: a log line (request id,
// name, type, principal, duration, outcome; persisted, when the request named its document by
// hash) and the metrics (counted by name, type and outcome;
// queries and mutations timed). An operation ends with its response (a query or mutation), when
// it stops (a subscription, whose outcome is its last failed response or else "ok"), or with its
// refusal before it ran (parse, validation, limits, authorization). Variables and results are
// never logged: they hold event payloads.
type operations struct {
	logger  *slog.Logger
	metrics *metrics.Metrics // nil counts nothing
}

var (
	_ graphql.HandlerExtension     = operations{}
	_ graphql.OperationInterceptor = operations{}
	_ graphql.ResponseInterceptor  = operations{}
)

func (operations) ExtensionName() string                   { return "Operations" }
func (operations) Validate(graphql.ExecutableSchema) error { return nil }

// ran marks the responses of operations that ran, which InterceptOperation reports; a response
// without it is a refusal, which only InterceptResponse sees.
type ran struct{}

func (o operations) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if ctx.Value(ran{}) == nil && graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		o.ended(ctx, oc, oc.Stats.OperationStart, Outcome(resp), 0)
	}
	return resp
}

func (o operations) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	start, subscription := oc.Stats.OperationStart, operationType(oc) == "subscription"
	responses := next(ctx)
	// gqlgen calls a ResponseHandler from one goroutine at a time, until it returns nil (a
	// query or mutation: after its one response).
	done, sent, outcome := false, 0, "ok"
	return func(ctx context.Context) *graphql.Response {
		resp := responses(context.WithValue(ctx, ran{}, true))
		if done {
			return resp
		}
		if resp != nil {
			sent++
			if out := Outcome(resp); out != "ok" {
				outcome = out
			}
		}
		if resp == nil || !subscription {
			done = true
			o.ended(ctx, oc, start, outcome, sent)
		}
		return resp
	}
}

// ended reports one operation's end.
func (o operations) ended(ctx context.Context, oc *graphql.OperationContext, start time.Time, outcome string, sent int) {
	name, typ, took := operationName(oc), operationType(oc), time.Since(start)
	o.metrics.Operation(name, typ, outcome, took)
	if typ == "" {
		typ = "unknown"
	}
	level := slog.LevelInfo
	if outcome == CodeInternal {
		level = slog.LevelWarn
	}
	if !o.logger.Enabled(ctx, level) {
		return
	}
	p, _ := auth.FromContext(ctx)
	attrs := []slog.Attr{
		slog.String("request_id", reqlog.ID(ctx)), slog.String("operation", name), slog.String("type", typ),
		slog.String("principal", p.Subject), slog.Duration("duration", took), slog.String("outcome", outcome),
	}
	if typ == "subscription" {
		attrs = append(attrs, slog.Int("messages", sent))
	}
	if how, ok := oc.Stats.GetExtension(persistedLogKey).(string); ok {
		attrs = append(attrs, slog.String("persisted", how))
	}
	o.logger.LogAttrs(ctx, level, "graphql operation", attrs...)
}

// operationName is the name the client gave the operation, in the request or in the document.
func operationName(oc *graphql.OperationContext) string {
	if oc.OperationName == "" && oc.Operation != nil {
		return oc.Operation.Name
	}
	return oc.OperationName
}

// operationType is query, mutation or subscription; "" when the document did not parse.
func operationType(oc *graphql.OperationContext) string {
	if oc.Operation == nil {
		return ""
	}
	return string(oc.Operation.Operation)
}

// Outcome sums up a response: "ok", or the code of its first error.
func Outcome(resp *graphql.Response) string {
	if resp == nil || len(resp.Errors) == 0 {
		return "ok"
	}
	return errorCode(resp.Errors[0])
}

func errorCode(e *gqlerror.Error) string {
	if code, ok := e.Extensions["code"].(string); ok && code != "" {
		return code
	}
	return "ERROR"
}
