package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

var errStop = errors.New("stop")

// Step is one event of an aggregate's history and the state after it.
type Step[S any] struct {
	Event eventstore.RecordedEvent
	State S
}

// replay rebuilds an aggregate from its stream up to u, applying each event with apply, and
// calls visit with each event and the state after it. Without visit it starts from the newest
// snapshot at or before the target version (asOf resolves to a version first), and when it
// replayed the whole current state it leaves a snapshot every SnapshotEvery events.
func replay[S any](ctx context.Context, h *Handler, streamID string, shape int, u Until, apply func(S, eventstore.RecordedEvent) (S, error), version func(S) int64, visit func(Step[S])) (S, error) {
	var s S
	target := u.Version
	if !u.Before.IsZero() {
		v, err := h.store.StreamVersionBefore(ctx, streamID, u.Before)
		if err != nil {
			return s, err
		}
		// Before a stream's hidden versions, "did not exist yet" and "truncated" look alike
		// once the scavenger has deleted them: both are answered as truncated.
		if info, err := h.store.Stream(ctx, streamID); err == nil && !info.Deleted {
			if first := info.Metadata.FirstVersion(info.Version); first > 1 && v < first-1 {
				return s, &eventstore.TruncatedError{StreamID: streamID, First: first}
			}
		}
		if v == 0 {
			return s, nil
		}
		if target == 0 || v < target {
			target = v
		}
	}
	every := h.opts.SnapshotEvery[eventstore.Category(streamID)]
	from, snapped := int64(1), int64(0)
	if visit == nil && every > 0 {
		snap, ok, err := h.store.LatestSnapshot(ctx, streamID, shape, target)
		if err != nil {
			return s, err
		}
		if ok && json.Unmarshal(snap.State, &s) == nil {
			from, snapped = snap.Version+1, snap.Version
		} else {
			var zero S
			s = zero
		}
	}
	fold := func(e eventstore.RecordedEvent) error {
		if target > 0 && e.Version > target {
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
	}
	err := h.readFrom(ctx, streamID, from, target, fold)
	var truncated *eventstore.TruncatedError
	if errors.As(err, &truncated) {
		// The stream hides its versions before truncated.First: start from the snapshot the
		// truncation left at the version before (command.SetStreamMetadata takes it).
		if s, err = truncatedStart[S](ctx, h, streamID, shape, target, truncated.First); err == nil {
			from, snapped = truncated.First, truncated.First-1
			err = h.readFrom(ctx, streamID, from, target, fold)
		}
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	if err == nil && visit == nil && every > 0 && !h.opts.ReadOnly && u == (Until{}) && version(s)-snapped >= int64(every) {
		// Outside any append; a failure only costs the next load a longer replay.
		if state, merr := json.Marshal(s); merr == nil {
			_ = h.store.SaveSnapshot(context.WithoutCancel(ctx), eventstore.Snapshot{StreamID: streamID, Version: version(s), Shape: shape, State: state, Subject: subjectOf(streamID)})
		}
	}
	return s, err
}

// truncatedStart is the state a replay of a stream that hides the versions before first starts
// from: its snapshot at version first-1. Without one, or when the replay must stop before it,
// the answer is a *eventstore.TruncatedError.
func truncatedStart[S any](ctx context.Context, h *Handler, streamID string, shape int, target, first int64) (S, error) {
	var s S
	if target > 0 && target < first-1 {
		return s, &eventstore.TruncatedError{StreamID: streamID, Version: target, First: first}
	}
	snap, ok, err := h.store.LatestSnapshot(ctx, streamID, shape, first-1)
	if err != nil {
		return s, err
	}
	if !ok || snap.Version != first-1 || json.Unmarshal(snap.State, &s) != nil {
		return s, fmt.Errorf("%w, and has no snapshot at version %d to load from", &eventstore.TruncatedError{StreamID: streamID, First: first}, first-1)
	}
	return s, nil
}

func userVersion(s user.State) int64   { return s.Version }
func orderVersion(s order.State) int64 { return s.Version }

// ApplyUser folds a stored event into a user's state: s at the event's version, and whether
// the event was one the User aggregate knows (an unknown type changes nothing but the version).
// A payload that cannot be decoded, or that an upcaster refused, is an error.
func ApplyUser(s user.State, e eventstore.RecordedEvent) (user.State, bool, error) {
	ev, err := decode(e, user.Decode)
	if ev != nil {
		s = s.Apply(ev)
	}
	s.Version = e.Version
	return s, ev != nil, err
}

// ApplyOrder folds a stored event into an order's state, as ApplyUser.
func ApplyOrder(s order.State, e eventstore.RecordedEvent) (order.State, bool, error) {
	ev, err := decode(e, order.Decode)
	if ev != nil {
		s = s.Apply(ev)
	}
	s.Version = e.Version
	return s, ev != nil, err
}

func applyUser(s user.State, e eventstore.RecordedEvent) (user.State, error) {
	s, _, err := ApplyUser(s, e)
	return s, err
}

func applyOrder(s order.State, e eventstore.RecordedEvent) (order.State, error) {
	s, _, err := ApplyOrder(s, e)
	return s, err
}

// UserUntil replays a user's events up to u; a user that did not exist then is the zero State.
func (h *Handler) UserUntil(ctx context.Context, id string, u Until) (user.State, error) {
	return replay(ctx, h, user.StreamID(id), user.StateShape, u, applyUser, userVersion, nil)
}

// OrderUntil replays an order's events up to u.
func (h *Handler) OrderUntil(ctx context.Context, id string, u Until) (order.State, error) {
	return replay(ctx, h, order.StreamID(id), order.StateShape, u, applyOrder, orderVersion, nil)
}

// UserAt replays a user's whole stream, without snapshots, and returns the state with the
// position of its last event: where a subscription to it takes over.
func (h *Handler) UserAt(ctx context.Context, id string) (user.State, eventstore.Position, error) {
	var at eventstore.Position
	s, err := replay(ctx, h, user.StreamID(id), user.StateShape, Until{}, applyUser, userVersion, func(st Step[user.State]) { at = st.Event.Position })
	return s, at, err
}

// OrderAt is UserAt for an order.
func (h *Handler) OrderAt(ctx context.Context, id string) (order.State, eventstore.Position, error) {
	var at eventstore.Position
	s, err := replay(ctx, h, order.StreamID(id), order.StateShape, Until{}, applyOrder, orderVersion, func(st Step[order.State]) { at = st.Event.Position })
	return s, at, err
}

// UserHistory returns every event of a user with the state after it, in version order.
func (h *Handler) UserHistory(ctx context.Context, id string) ([]Step[user.State], error) {
	var steps []Step[user.State]
	_, err := replay(ctx, h, user.StreamID(id), user.StateShape, Until{}, applyUser, userVersion, func(s Step[user.State]) { steps = append(steps, s) })
	return steps, err
}

// OrderHistory returns every event of an order with the state after it, in version order.
func (h *Handler) OrderHistory(ctx context.Context, id string) ([]Step[order.State], error) {
	var steps []Step[order.State]
	_, err := replay(ctx, h, order.StreamID(id), order.StateShape, Until{}, applyOrder, orderVersion, func(s Step[order.State]) { steps = append(steps, s) })
	return steps, err
}
