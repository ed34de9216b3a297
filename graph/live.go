package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
	"github.com/strata-es/strata/internal/hub"
	"github.com/strata-es/strata/internal/wsconn"
)

// WebSocket close codes Strata sends besides the standard ones.
const (
	// CloseSlowConsumer: the client did not take a message within the write timeout; it
	// resumes from the position of the last event it received.
	CloseSlowConsumer = 4008
	closeGoingAway    = 1001
)

// subscribeEvents is Subscription.events.
func (r *Resolver) subscribeEvents(ctx context.Context, after, streamID, category *string, types []string) (<-chan *model.Event, error) {
	var f hub.Filter
	if streamID != nil {
		f.StreamID = *streamID
	}
	if category != nil {
		f.Category = *category
	}
	f.Types = types
	if err := checkFilter(f); err != nil {
		return nil, err
	}
	var from *eventstore.Position
	if after != nil && *after != "" {
		p, err := eventstore.ParsePosition(*after)
		if err != nil {
			return nil, err
		}
		from = &p
	}
	out := make(chan *model.Event)
	if err := follow(ctx, r, from, f, out, func(e eventstore.RecordedEvent, stop <-chan struct{}) bool {
		return offer(ctx, out, toEvent(e), stop)
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// follow runs a subscription on the hub, counted against its connection's cap, emitting into
// out; when it ends, out is closed and the connection told why (ended).
func follow[M any](ctx context.Context, r *Resolver, from *eventstore.Position, f hub.Filter, out chan M, emit func(eventstore.RecordedEvent, <-chan struct{}) bool) error {
	release, err := r.takeSubscription(ctx)
	if err != nil {
		return err
	}
	err = r.Hub.Follow(ctx, from, f, emit, func(err error) {
		release()
		close(out)
		r.ended(ctx, err)
	})
	if err != nil {
		release()
	}
	return err
}

// takeSubscription counts a subscription against its connection's cap.
func (r *Resolver) takeSubscription(ctx context.Context) (func(), error) {
	limit := r.Limits.withDefaults().MaxSubscriptionsPerConnection
	release, ok := wsconn.TakeSubscription(ctx, limit)
	if !ok {
		return nil, errTooManySubscriptions(limit)
	}
	return release, nil
}

// offer hands v to gqlgen's channel, unless the subscription ends first.
func offer[T any](ctx context.Context, out chan<- T, v T, stop <-chan struct{}) bool {
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	case <-stop: // the server is stopping: do not wait for the client
		return false
	}
}

func checkFilter(f hub.Filter) error {
	names := map[string]string{"streamId": f.StreamID, "category": f.Category}
	for i, t := range f.Types {
		names[fmt.Sprintf("types[%d]", i)] = t
		if t == "" {
			return &eventstore.ValidationError{Field: fmt.Sprintf("types[%d]", i), Reason: "must not be empty"}
		}
	}
	for field, v := range names {
		if len(v) > eventstore.MaxStreamIDLen {
			return &eventstore.ValidationError{Field: field, Reason: fmt.Sprintf("is %d bytes long, the limit is %d", len(v), eventstore.MaxStreamIDLen)}
		}
	}
	return nil
}

// subscribeOrder is Subscription.order: the current state, then the state after each event.
func (r *Resolver) subscribeOrder(ctx context.Context, id string) (<-chan *model.Order, error) {
	return followAggregate(ctx, r, order.Definition(), id, func(l command.Loaded[order.State]) *model.Order { return toOrder(l.State) })
}

// subscribeUser is Subscription.user, as subscribeOrder.
func (r *Resolver) subscribeUser(ctx context.Context, id string) (<-chan *model.User, error) {
	return followAggregate(ctx, r, user.Definition(), id, func(l command.Loaded[user.State]) *model.User { return toUser(l.State) })
}

// followAggregate pushes an aggregate's state now, then after each of its events: it replays
// the stream, then follows it from the position of its last event. Events of a type the
// aggregate does not know change nothing and push nothing; its tombstone (deleteStream)
// completes the subscription.
func followAggregate[S, M any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], id string, toModel func(command.Loaded[S]) M) (<-chan M, error) {
	if _, err := command.ParseID("id", id); err != nil {
		return nil, err
	}
	agg := command.For(r.Commands, def)
	l, at, err := agg.At(ctx, id)
	if err != nil {
		return nil, err
	}
	if !l.Exists() {
		return nil, fmt.Errorf("%s %s: %w", strings.ToLower(def.Name), id, domain.ErrNotFound)
	}
	out := make(chan M, 1)
	out <- toModel(l)
	err = follow(ctx, r, &at, hub.Filter{StreamID: def.Stream(id)}, out, func(e eventstore.RecordedEvent, stop <-chan struct{}) bool {
		switch {
		case e.Type == eventstore.StreamDeletedType:
			return false // the stream was deleted: the subscription completes
		case e.Version <= l.Version:
			// Folded already: a truncated stream whose visible events are all in the
			// snapshot it loaded from has no last event to follow from.
			return true
		}
		next, known, err := agg.Apply(l, e)
		if err != nil {
			r.logger().ErrorContext(ctx, strings.ToLower(def.Name)+" subscription: undecodable event", "stream_id", e.StreamID, "version", e.Version, "err", err)
			return false
		}
		l = next
		return !known || offer(ctx, out, toModel(l), stop)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ended closes the connection of a subscription the hub ended: a stopping server with 1001,
// anything else with 1011.
func (r *Resolver) ended(ctx context.Context, err error) {
	conn := wsconn.FromContext(ctx)
	switch {
	case err == nil || conn == nil:
	case errors.Is(err, hub.ErrStopped):
		conn.CloseWithReason(closeGoingAway, "server shutting down")
	default:
		r.logger().ErrorContext(ctx, "subscription ended", "err", err)
		conn.CloseWithReason(1011, "internal error")
	}
}

// logger returns r.Logger, or a logger that discards.
func (r *Resolver) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}
