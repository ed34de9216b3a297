package command

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
)

// SetStreamMetadata sets a stream's lifecycle settings (eventstore.StreamMetadata), with the
// rules aggregates need. An aggregate is loaded by folding its stream, so its stream may be
// truncated but not capped: truncateBefore N first leaves a snapshot of the state at version
// N-1, which loads start from once the versions before N are hidden; maxAge and maxCount,
// which move with every append, are refused. Email claim streams are loaded without snapshots
// and take no settings. Other streams take any.
func (h *Handler) SetStreamMetadata(ctx context.Context, streamID string, m eventstore.StreamMetadata) (eventstore.StreamInfo, error) {
	category := eventstore.Category(streamID)
	var owner string
	switch category {
	case user.Category:
		owner = "User"
	case order.Category:
		owner = "Order"
	case user.ClaimCategory:
		if m != (eventstore.StreamMetadata{}) {
			return eventstore.StreamInfo{}, &eventstore.ValidationError{Field: "streamId", Reason: "email claim streams are read whole; they take no truncateBefore, maxAge or maxCount"}
		}
	}
	if owner != "" {
		switch {
		case m.MaxAge > 0:
			return eventstore.StreamInfo{}, &eventstore.ValidationError{Field: "maxAge", Reason: fmt.Sprintf("streams of the %s aggregate are loaded from their events; truncate them (truncateBefore) instead", owner)}
		case m.MaxCount > 0:
			return eventstore.StreamInfo{}, &eventstore.ValidationError{Field: "maxCount", Reason: fmt.Sprintf("streams of the %s aggregate are loaded from their events; truncate them (truncateBefore) instead", owner)}
		}
	}
	if owner != "" && m.TruncateBefore > 1 {
		info, err := h.store.Stream(ctx, streamID)
		if err != nil {
			return eventstore.StreamInfo{}, err
		}
		if m.TruncateBefore <= info.Metadata.TruncateBefore { // no move forward: nothing to snapshot
			return h.store.SetStreamMetadata(ctx, streamID, m)
		}
		if category == user.Category {
			err = snapshotAt(ctx, h, streamID, user.StateShape, m.TruncateBefore-1, applyUser, userVersion)
		} else {
			err = snapshotAt(ctx, h, streamID, order.StateShape, m.TruncateBefore-1, applyOrder, orderVersion)
		}
		if err != nil {
			return eventstore.StreamInfo{}, err
		}
	}
	return h.store.SetStreamMetadata(ctx, streamID, m)
}

// snapshotAt saves a snapshot of an aggregate's state at version v: the state a load starts
// from once the versions up to v are hidden. The events up to v never change, so it holds
// whatever is appended meanwhile.
func snapshotAt[S any](ctx context.Context, h *Handler, streamID string, shape int, v int64, apply func(S, eventstore.RecordedEvent) (S, error), version func(S) int64) error {
	s, err := replay(ctx, h, streamID, shape, Until{Version: v}, apply, version, nil)
	if err != nil {
		return err
	}
	if got := version(s); got != v {
		return &eventstore.ValidationError{Field: "truncateBefore", Reason: fmt.Sprintf("%d is beyond the stream's next version, %d", v+1, got+1)}
	}
	state, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("snapshot %s at %d: %w", streamID, v, err)
	}
	return h.store.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: streamID, Version: v, Shape: shape, State: state})
}
