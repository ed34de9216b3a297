package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/transport/sse"
	"github.com/strata-es/strata/internal/transport/wsconn"
)

// WebSocket close codes Strata sends besides the standard ones.
const (
	// CloseSlowConsumer: the client did not take a message within the write timeout; it
	// resumes from the position of the last event it received.
	CloseSlowConsumer = 4008
	closeGoingAway    = 1001
)

// subscribeEvents is Subscription.events.
func (r *Resolver) subscribeEvents(ctx context.Context, after, streamID, category *string, types []string, query *model.EventQueryInput) (<-chan *model.Event, error) {
	var f hub.Filter
	if streamID != nil {
		f.StreamID = *streamID
	}
	if category != nil {
		f.Category = *category
	}
	f.Types = types
	if query != nil {
		q := toQuery(query)
		if err := eventstore.ValidateQuery("query", q); err != nil {
			return nil, err
		}
		f.Query = &q
	}
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

// followAggregate pushes an aggregate's state now, then after each of its events
// (service.Follow), counted against its connection's cap; its tombstone (deleteStream)
// completes the subscription.
func followAggregate[S, M any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], id string, toModel func(command.Loaded[S]) M) (<-chan M, error) {
	release, err := r.takeSubscription(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan M, 1)
	err = service.Follow(ctx, r.svc(), def, id,
		func(l command.Loaded[S]) { out <- toModel(l) },
		func(l command.Loaded[S], stop <-chan struct{}) bool { return offer(ctx, out, toModel(l), stop) },
		func(err error) {
			release()
			close(out)
			r.ended(ctx, err)
		})
	if err != nil {
		release()
		return nil, err
	}
	return out, nil
}

// ended closes the connection of a subscription the hub ended: a stopping server with 1001,
// anything else with 1011; over SSE it ends the stream without complete, so the client knows
// to resubscribe.
func (r *Resolver) ended(ctx context.Context, err error) {
	if stream := sse.FromContext(ctx); stream != nil {
		switch {
		case err == nil:
		case errors.Is(err, hub.ErrStopped):
			stream.End("server shutting down; subscribe again with after set to the last position received")
		default:
			r.logger().ErrorContext(ctx, "subscription ended", "err", err)
			stream.End("internal error; subscribe again with after set to the last position received")
		}
		return
	}
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
