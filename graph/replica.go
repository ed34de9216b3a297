package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/strata-es/strata/internal/service"
)

// Replica is the read replica (READ_DATABASE_URL) that queries of read models and history read
// from; docs/design.md ("Read replicas") lists which fields. Where each read goes is the
// application layer's decision (service.Service.Read).
type Replica = service.Replica

// side is where one read goes: the primary, or the replica.
type side = service.Side

// svc is the application layer the resolvers call: Service when set, else one made once from
// the resolver's own fields.
func (r *Resolver) svc() *service.Service {
	r.svcOnce.Do(func() {
		if r.Service != nil {
			return
		}
		r.Service = &service.Service{
			Store: r.Store, Commands: r.Commands, Reader: r.Reader, Projectors: r.Projectors, Hub: r.Hub,
			Replica: r.Replica, ConsistencyTimeout: r.ConsistencyTimeout, MaxReplayEvents: r.MaxReplayEvents,
			Writing: writing, Logger: r.Logger,
		}
	})
	return r.Service
}

// writing reports whether ctx is a GraphQL operation that is not a query: a mutation, whose
// answer shows what it has just written, or a subscription. Such a request reads the primary.
func writing(ctx context.Context) bool {
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation != ast.Query {
			return true
		}
	}
	return false
}

// read is service.Service.Read.
func (r *Resolver) read(ctx context.Context, fn func(side) error) error { return r.svc().Read(ctx, fn) }

// readConsistentOf is service.Service.ReadConsistentOf.
func (r *Resolver) readConsistentOf(ctx context.Context, consistentWith *string, models []string, fn func(side) error) error {
	return r.svc().ReadConsistentOf(ctx, consistentWith, models, fn)
}
