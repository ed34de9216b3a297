package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// SetStreamMetadata sets a stream's lifecycle settings (eventstore.StreamMetadata), with the
// rules aggregates need. An aggregate is loaded by folding its stream, so the stream of a
// registered aggregate may be truncated but not capped: truncateBefore N first leaves a
// snapshot of the state at version N-1, which loads start from once the versions before N are
// hidden; maxAge and maxCount, which move with every append, are refused. The other streams an
// aggregate writes (claim streams of unique values, such as email addresses and SKUs) are read
// whole, without snapshots, and take no settings. Other streams take any.
func (h *Handler) SetStreamMetadata(ctx context.Context, streamID string, m eventstore.StreamMetadata) (eventstore.StreamInfo, error) {
	if m != (eventstore.StreamMetadata{}) {
		category := eventstore.Category(streamID)
		for _, k := range h.kinds {
			if slices.Contains(k.Describe().Also, category) {
				return eventstore.StreamInfo{}, &eventstore.ValidationError{Field: "streamId", Reason: fmt.Sprintf("%s streams (the %s aggregate's claims) are read whole; they take no truncateBefore, maxAge or maxCount", category, k.Describe().Name)}
			}
		}
	}
	k, err := h.kindOf(streamID)
	if errors.Is(err, errNotAggregate) {
		return h.store.SetStreamMetadata(ctx, streamID, m)
	}
	owner := k.Describe().Name
	switch {
	case m.MaxAge > 0:
		return eventstore.StreamInfo{}, &eventstore.ValidationError{Field: "maxAge", Reason: fmt.Sprintf("streams of the %s aggregate are loaded from their events; truncate them (truncateBefore) instead", owner)}
	case m.MaxCount > 0:
		return eventstore.StreamInfo{}, &eventstore.ValidationError{Field: "maxCount", Reason: fmt.Sprintf("streams of the %s aggregate are loaded from their events; truncate them (truncateBefore) instead", owner)}
	}
	if m.TruncateBefore > 1 {
		info, err := h.store.Stream(ctx, streamID)
		if err != nil {
			return eventstore.StreamInfo{}, err
		}
		if m.TruncateBefore <= info.Metadata.TruncateBefore { // no move forward: nothing to snapshot
			return h.store.SetStreamMetadata(ctx, streamID, m)
		}
		if err := h.snapshotAt(ctx, streamID, kindFolder(k), m.TruncateBefore-1); err != nil {
			return eventstore.StreamInfo{}, err
		}
	}
	return h.store.SetStreamMetadata(ctx, streamID, m)
}

// snapshotAt saves a snapshot of an aggregate's state at version v: the state a load starts
// from once the versions up to v are hidden. The events up to v never change, so it holds
// whatever is appended meanwhile.
func (h *Handler) snapshotAt(ctx context.Context, streamID string, f folder[any], v int64) error {
	l, err := replay(ctx, h, streamID, f, Until{Version: v}, nil)
	if err != nil {
		return err
	}
	if l.Version != v {
		return &eventstore.ValidationError{Field: "truncateBefore", Reason: fmt.Sprintf("%d is beyond the stream's next version, %d", v+1, l.Version+1)}
	}
	state, err := json.Marshal(l.State)
	if err != nil {
		return fmt.Errorf("snapshot %s at %d: %w", streamID, v, err)
	}
	return h.store.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: streamID, Version: v, Shape: f.shape, State: state})
}
