package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/strata-es/strata/internal/auth"
	"github.com/strata-es/strata/internal/reqlog"
)

// opLog logs one line per GraphQL operation: its request id, name, type, principal, duration
// and outcome ("ok" or the first error's code). A subscription's line comes when it ends, with
// the number of messages it sent. Variables and results are never logged: they hold event
// payloads.
type opLog struct{ logger *slog.Logger }

var (
	_ graphql.HandlerExtension     = opLog{}
	_ graphql.OperationInterceptor = opLog{}
	_ graphql.ResponseInterceptor  = opLog{}
)

// dispatched marks the responses of operations that ran, which InterceptOperation logs; a
// response without it is an operation refused before it ran (parse, validation, limits,
// authorization), logged by InterceptResponse.
type dispatched struct{}

func (l opLog) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if ctx.Value(dispatched{}) == nil && graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		kind := "unknown"
		if oc.Operation != nil {
			kind = string(oc.Operation.Operation)
		}
		l.log(ctx, oc, kind, oc.Stats.OperationStart, Outcome(resp), 0)
	}
	return resp
}

func (opLog) ExtensionName() string                   { return "OperationLog" }
func (opLog) Validate(graphql.ExecutableSchema) error { return nil }

func (l opLog) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	start := time.Now()
	oc := graphql.GetOperationContext(ctx)
	kind := "unknown"
	if oc.Operation != nil {
		kind = string(oc.Operation.Operation)
	}
	responses := next(ctx)
	if kind != "subscription" {
		return func(ctx context.Context) *graphql.Response {
			resp := responses(context.WithValue(ctx, dispatched{}, true))
			l.log(ctx, oc, kind, start, Outcome(resp), 1)
			return resp
		}
	}
	sent, outcome := 0, "ok"
	return func(ctx context.Context) *graphql.Response {
		resp := responses(context.WithValue(ctx, dispatched{}, true))
		if resp == nil {
			l.log(ctx, oc, kind, start, outcome, sent)
			return nil
		}
		sent++
		if o := Outcome(resp); o != "ok" {
			outcome = o
		}
		return resp
	}
}

func (l opLog) log(ctx context.Context, oc *graphql.OperationContext, kind string, start time.Time, outcome string, messages int) {
	name := oc.OperationName
	if name == "" && oc.Operation != nil {
		name = oc.Operation.Name
	}
	p, _ := auth.FromContext(ctx)
	level := slog.LevelInfo
	if outcome == CodeInternal {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", reqlog.ID(ctx)), slog.String("operation", name), slog.String("type", kind),
		slog.String("principal", p.Subject), slog.Duration("duration", time.Since(start)), slog.String("outcome", outcome),
	}
	if kind == "subscription" {
		attrs = append(attrs, slog.Int("messages", messages))
	}
	l.logger.LogAttrs(ctx, level, "graphql operation", attrs...)
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
