package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/strata-es/strata/internal/metrics"
)

// operationMetrics counts GraphQL operations by name, type and outcome, and times queries and
// mutations. An operation counts when it ends: a query or mutation with its response, a
// subscription when it stops, with the outcome of its last failed response or else "ok"; an
// operation refused before it ran (parse, validation, limits, authorization) with its refusal.
type operationMetrics struct{ m *metrics.Metrics }

var (
	_ graphql.HandlerExtension     = operationMetrics{}
	_ graphql.OperationInterceptor = operationMetrics{}
	_ graphql.ResponseInterceptor  = operationMetrics{}
)

func (operationMetrics) ExtensionName() string                   { return "OperationMetrics" }
func (operationMetrics) Validate(graphql.ExecutableSchema) error { return nil }

// ranKey marks the responses of operations that ran, which InterceptOperation counts; a
// response without it is a refusal, which only InterceptResponse sees.
type ranKey struct{}

func (o operationMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if ctx.Value(ranKey{}) == nil && graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		o.m.Operation(operationName(oc), operationType(oc), Outcome(resp), time.Since(oc.Stats.OperationStart))
	}
	return resp
}

func (o operationMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	name, typ, start := operationName(oc), operationType(oc), oc.Stats.OperationStart
	responses := next(ctx)
	// gqlgen calls a ResponseHandler from one goroutine at a time, until it returns nil (a
	// query or mutation: after its one response).
	counted, outcome := false, "ok"
	return func(ctx context.Context) *graphql.Response {
		resp := responses(context.WithValue(ctx, ranKey{}, true))
		if counted {
			return resp
		}
		if resp != nil && Outcome(resp) != "ok" {
			outcome = Outcome(resp)
		}
		if resp == nil || typ != "subscription" {
			counted = true
			o.m.Operation(name, typ, outcome, time.Since(start))
		}
		return resp
	}
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
