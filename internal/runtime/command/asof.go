package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// Until bounds a replay: at most Version (0: no bound), and only events before Before (the end
// of the log as of a time, from Store.AsOf; zero: no bound).
type Until struct {
	Version int64
	Before  eventstore.Position
}

var errStop = errors.New("stop")

// Loaded is an aggregate's state with its stream's version: the version of the last event
// folded in, 0 while the aggregate does not exist.
type Loaded[S any] struct {
	State   S
	Version int64
}

// Exists reports whether the aggregate has events.
func (l Loaded[S]) Exists() bool { return l.Version > 0 }

// Step is one event of an aggregate's history and the state after it.
type Step[S any] struct {
	Event eventstore.RecordedEvent
	State S
}

// folder is how a replay folds one aggregate's events: apply folds a stored event into the
// state, unmarshal reads a snapshot's state, and shape is the snapshots' shape.
type folder[S any] struct {
	shape     int
	apply     func(Loaded[S], eventstore.RecordedEvent) (Loaded[S], bool, error)
	unmarshal func([]byte) (S, error)
}

// replay rebuilds an aggregate from its stream up to u, and calls visit with each event and the
// state after it. Without visit it starts from the newest snapshot at or before the target
// version (asOf resolves to a version first), and when it replayed the whole current state it
// leaves a snapshot every SnapshotEvery events.
func replay[S any](ctx context.Context, h *Handler, streamID string, f folder[S], u Until, visit func(Step[S])) (Loaded[S], error) {
	var l Loaded[S]
	target := u.Version
	if !u.Before.IsZero() {
		v, err := h.store.StreamVersionBefore(ctx, streamID, u.Before)
		if err != nil {
			return l, err
		}
		// Before a stream's hidden versions, "did not exist yet" and "truncated" look alike
		// once the scavenger has deleted them: both are answered as truncated.
		if info, err := h.store.Stream(ctx, streamID); err == nil && !info.Deleted {
			if first := info.Metadata.FirstVersion(info.Version); first > 1 && v < first-1 {
				return l, &eventstore.TruncatedError{StreamID: streamID, First: first}
			}
		}
		if v == 0 {
			return l, nil
		}
		if target == 0 || v < target {
			target = v
		}
	}
	every := h.opts.SnapshotEvery[eventstore.Category(streamID)]
	from, snapped := int64(1), int64(0)
	if visit == nil && every > 0 {
		snap, ok, err := h.store.LatestSnapshot(ctx, streamID, f.shape, target)
		if err != nil {
			return l, err
		}
		if ok {
			if s, err := f.unmarshal(snap.State); err == nil {
				l = Loaded[S]{State: s, Version: snap.Version}
				from, snapped = snap.Version+1, snap.Version
			}
		}
	}
	fold := func(e eventstore.RecordedEvent) error {
		if target > 0 && e.Version > target {
			return errStop
		}
		var err error
		if l, _, err = f.apply(l, e); err != nil {
			return err
		}
		if visit != nil {
			visit(Step[S]{Event: e, State: l.State})
		}
		return nil
	}
	err := h.readFrom(ctx, streamID, from, target, fold)
	var truncated *eventstore.TruncatedError
	if errors.As(err, &truncated) {
		// The stream hides its versions before truncated.First: start from the snapshot the
		// truncation left at the version before (SetStreamMetadata takes it).
		if l, err = truncatedStart(ctx, h, streamID, f, target, truncated.First); err == nil {
			from, snapped = truncated.First, truncated.First-1
			err = h.readFrom(ctx, streamID, from, target, fold)
		}
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	if err == nil && visit == nil && every > 0 && !h.opts.ReadOnly && u == (Until{}) && l.Version-snapped >= int64(every) {
		// Outside any append; a failure only costs the next load a longer replay.
		if state, merr := json.Marshal(l.State); merr == nil {
			_ = h.store.SaveSnapshot(context.WithoutCancel(ctx), eventstore.Snapshot{StreamID: streamID, Version: l.Version, Shape: f.shape, State: state, Subject: h.subjectOf(streamID)})
		}
	}
	return l, err
}

// truncatedStart is the state a replay of a stream that hides the versions before first starts
// from: its snapshot at version first-1. Without one, or when the replay must stop before it,
// the answer is a *eventstore.TruncatedError.
func truncatedStart[S any](ctx context.Context, h *Handler, streamID string, f folder[S], target, first int64) (Loaded[S], error) {
	if target > 0 && target < first-1 {
		return Loaded[S]{}, &eventstore.TruncatedError{StreamID: streamID, Version: target, First: first}
	}
	snap, ok, err := h.store.LatestSnapshot(ctx, streamID, f.shape, first-1)
	if err != nil {
		return Loaded[S]{}, err
	}
	var s S
	if ok && snap.Version == first-1 {
		s, err = f.unmarshal(snap.State)
	}
	if !ok || snap.Version != first-1 || err != nil {
		return Loaded[S]{}, fmt.Errorf("%w, and has no snapshot at version %d to load from", &eventstore.TruncatedError{StreamID: streamID, First: first}, first-1)
	}
	return Loaded[S]{State: s, Version: snap.Version}, nil
}
