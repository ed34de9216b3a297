package command

import (
	"context"
	"errors"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
)

// Until bounds a replay: at most Version (0: no bound), and only events before Before (the end
// of the log as of a time, from Store.AsOf; zero: no bound).
type Until struct {
	Version int64
	Before  eventstore.Position
}

func (u Until) includes(e eventstore.RecordedEvent) bool {
	if u.Version > 0 && e.Version > u.Version {
		return false
	}
	return u.Before.IsZero() || e.Position.Compare(u.Before) < 0
}

var errStop = errors.New("stop")

// Step is one event of an aggregate's history and the state after it.
type Step[S any] struct {
	Event eventstore.RecordedEvent
	State S
}

// replay reads a stream in version order up to u, applying each event with apply, and calls
// visit with each event and the state after it (visit may be nil).
func replay[S any](ctx context.Context, h *Handler, streamID string, u Until, apply func(S, eventstore.RecordedEvent) (S, error), visit func(Step[S])) (S, error) {
	var s S
	err := h.readAll(ctx, streamID, func(e eventstore.RecordedEvent) error {
		if !u.includes(e) {
			return errStop
		}
		var err error
		if s, err = apply(s, e); err != nil {
			return err
		}
		if visit != nil {
			visit(Step[S]{Event: e, State: s})
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return s, err
}

func applyUser(s user.State, e eventstore.RecordedEvent) (user.State, error) {
	ev, err := decode(e, user.Decode)
	if ev != nil {
		s = s.Apply(ev)
	}
	s.Version = e.Version
	return s, err
}

func applyOrder(s order.State, e eventstore.RecordedEvent) (order.State, error) {
	ev, err := decode(e, order.Decode)
	if ev != nil {
		s = s.Apply(ev)
	}
	s.Version = e.Version
	return s, err
}

// UserUntil replays a user's events up to u; a user that did not exist then is the zero State.
func (h *Handler) UserUntil(ctx context.Context, id string, u Until) (user.State, error) {
	return replay(ctx, h, user.StreamID(id), u, applyUser, nil)
}

// OrderUntil replays an order's events up to u.
func (h *Handler) OrderUntil(ctx context.Context, id string, u Until) (order.State, error) {
	return replay(ctx, h, order.StreamID(id), u, applyOrder, nil)
}

// UserHistory returns every event of a user with the state after it, in version order.
func (h *Handler) UserHistory(ctx context.Context, id string) ([]Step[user.State], error) {
	var steps []Step[user.State]
	_, err := replay(ctx, h, user.StreamID(id), Until{}, applyUser, func(s Step[user.State]) { steps = append(steps, s) })
	return steps, err
}

// OrderHistory returns every event of an order with the state after it, in version order.
func (h *Handler) OrderHistory(ctx context.Context, id string) ([]Step[order.State], error) {
	var steps []Step[order.State]
	_, err := replay(ctx, h, order.StreamID(id), Until{}, applyOrder, func(s Step[order.State]) { steps = append(steps, s) })
	return steps, err
}
