package graph

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/eventstore"
	"github.com/strata-es/strata/internal/query"
	"github.com/strata-es/strata/internal/replica"
)

// Replica is the read replica (READ_DATABASE_URL) that queries of projections and history read
// from; docs/design.md ("Read replicas") lists which fields. Mutations, subscriptions, the
// projections' status and every command's own reads stay on the primary.
type Replica struct {
	// Store, Reader and Commands read the replica. Commands only replays (history, time
	// travel); it never appends, and saves no snapshots.
	Store    *eventstore.Store
	Reader   *query.Reader
	Commands *command.Handler
	// WaitFor waits until the replica shows projection name at pos (projection.Runner.WaitForOn
	// on the replica's pool).
	WaitFor func(ctx context.Context, name string, pos eventstore.Position, timeout time.Duration) error
	// Router says whether the replica is up and counts the reads that fall back to the primary.
	Router *replica.Router
}

// side is where one read goes: the primary, or the replica.
type side struct {
	store    *eventstore.Store
	reader   *query.Reader
	commands *command.Handler
	replica  bool
}

func (r *Resolver) primary() side {
	return side{store: r.Store, reader: r.Reader, commands: r.Commands}
}

func (rep *Replica) side() side {
	return side{store: rep.Store, reader: rep.Reader, commands: rep.Commands, replica: true}
}

// pinned reports whether the request reads the primary only: a mutation (its answer, an
// order's customer say, shows what it has just written) or a subscription, and a query that
// has gone to the primary for consistentWith, so that what else it reads (an order's customer,
// a user's orders) is as fresh and one answer never mixes a fresh read with a staler one.
func pinned(ctx context.Context) bool {
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation != ast.Query {
			return true
		}
	}
	l, ok := ctx.Value(loadersKey{}).(*loaders)
	return ok && l.primary.Load()
}

func pin(ctx context.Context) {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		l.primary.Store(true)
	}
}

// errBehind is what a read on the replica returns when the replica has not replayed what the
// read needs (a time-travel bound, a version asked for): the primary then answers.
var errBehind = errors.New("the read replica is behind")

// read runs fn on the replica when there is one and it is up, and on the primary otherwise, or
// when the replica fails it or fn finds it behind (errBehind). fn only reads, so running it
// twice is harmless. A read without consistentWith may be stale on the replica: it shows what
// the replica has replayed.
func (r *Resolver) read(ctx context.Context, fn func(side) error) error {
	if r.Replica == nil || pinned(ctx) || !r.Replica.Router.Use(ctx) {
		return fn(r.primary())
	}
	return r.onReplica(ctx, fn)
}

// onReplica runs fn on the replica, and on the primary when the replica fails it.
func (r *Resolver) onReplica(ctx context.Context, fn func(side) error) error {
	err := fn(r.Replica.side())
	switch {
	case errors.Is(err, errBehind):
		r.Replica.Router.Fallback(ctx, replica.ReasonBehind, nil)
	case err == nil || !r.Replica.Router.Failed(ctx, err):
		return err
	}
	return fn(r.primary())
}

// readConsistent is read with consistentWith: fn runs where the read models have applied that
// position. The replica gets up to half the consistency timeout to show it (its checkpoint rows
// replicate with the read models they describe); then the read, and the rest of the request,
// go to the primary, which waits for what is left of the timeout.
func (r *Resolver) readConsistent(ctx context.Context, consistentWith *string, fn func(side) error) error {
	// Every aggregate's: an order's answer may hold its customer (the users read model) and a
	// user's its orders, so a wait for one alone could mix a fresh order with a stale customer.
	return r.readConsistentOf(ctx, consistentWith, r.readModelNames(), fn)
}

// readConsistentOf is readConsistent waiting for the read models called models.
func (r *Resolver) readConsistentOf(ctx context.Context, consistentWith *string, models []string, fn func(side) error) error {
	if consistentWith == nil || *consistentWith == "" {
		return r.read(ctx, fn)
	}
	pos, err := eventstore.ParsePosition(*consistentWith)
	if err != nil {
		return &eventstore.ValidationError{Field: "consistentWith", Reason: fmt.Sprintf("%q is not a position a mutation returned", *consistentWith)}
	}
	deadline := time.Now().Add(r.consistencyTimeout())
	if r.Replica != nil && !pinned(ctx) && r.Replica.Router.Use(ctx) {
		werr := r.waitFor(ctx, r.Replica.WaitFor, models, pos, time.Until(deadline)/2)
		if werr == nil {
			// Should the replica fail the read itself, the primary answers it at once: it is at
			// least as far along as its replica.
			return r.onReplica(ctx, fn)
		}
		if ctx.Err() == nil && !r.Replica.Router.Failed(ctx, werr) {
			r.Replica.Router.Fallback(ctx, replica.ReasonBehind, werr)
		}
	}
	pin(ctx)
	if err := r.waitFor(ctx, r.Projectors.WaitFor, models, pos, time.Until(deadline)); err != nil {
		return err
	}
	return fn(r.primary())
}

// waitFor waits, with wait, until every read model of names has applied pos.
func (r *Resolver) waitFor(ctx context.Context, wait func(context.Context, string, eventstore.Position, time.Duration) error, names []string, pos eventstore.Position, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, name := range names {
		if err := wait(ctx, name, pos, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

func (r *Resolver) consistencyTimeout() time.Duration {
	if r.ConsistencyTimeout > 0 {
		return r.ConsistencyTimeout
	}
	return DefaultConsistencyTimeout
}

// readBefore is read for a replay bounded by before (the end of the log as of a time, found on
// the primary): the replica answers only when it has replayed everything before that position,
// so that a time-travel answer is the same wherever it is read.
func (r *Resolver) readBefore(ctx context.Context, before eventstore.Position, fn func(side) error) error {
	return r.read(ctx, func(s side) error {
		if s.replica && !before.IsZero() {
			ok, err := s.store.Covers(ctx, before)
			if err != nil {
				return err
			}
			if !ok {
				return errBehind
			}
		}
		return fn(s)
	})
}
