package graph

import (
	"context"
	"time"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// toAppendResult is an append's (or a deletion's) answer.
func toAppendResult(res eventstore.AppendResult) *model.AppendResult {
	out := &model.AppendResult{
		StreamID: res.StreamID, NextExpectedVersion: int(res.NextExpectedVersion), Position: res.Position.String(),
		Events: make([]*model.Event, len(res.Events)), Repeated: res.Repeated,
	}
	for i, e := range res.Events {
		out.Events[i] = toEvent(e)
	}
	return out
}

// toStream is a stream with its lifecycle state.
func toStream(info eventstore.StreamInfo) *model.Stream {
	md := &model.StreamMetadata{}
	set := func(v int64) *int {
		if v == 0 {
			return nil
		}
		n := int(v)
		return &n
	}
	md.TruncateBefore = set(info.Metadata.TruncateBefore)
	md.MaxAge = set(int64(info.Metadata.MaxAge / time.Second))
	md.MaxCount = set(info.Metadata.MaxCount)
	return &model.Stream{
		ID: info.ID, Version: int(info.Version), Deleted: info.Deleted,
		FirstVersion: int(info.Metadata.FirstVersion(info.Version)), Metadata: md,
	}
}

// setStreamMetadata changes the settings given (nil: unchanged) through the command layer,
// which knows the aggregates' rules.
func (r *Resolver) setStreamMetadata(ctx context.Context, streamID string, truncateBefore, maxAge, maxCount *int) (*model.Stream, error) {
	info, err := r.Store.Stream(ctx, streamID)
	if err != nil {
		return nil, err
	}
	m := info.Metadata
	if truncateBefore != nil {
		m.TruncateBefore = int64(*truncateBefore)
	}
	if maxAge != nil {
		m.MaxAge = time.Duration(*maxAge) * time.Second
		if *maxAge < 0 || int64(*maxAge) > int64(eventstore.MaxMaxAge/time.Second) {
			return nil, &eventstore.ValidationError{Field: "maxAge", Reason: "must be between 0 and 100 years of seconds"}
		}
	}
	if maxCount != nil {
		m.MaxCount = int64(*maxCount)
	}
	info, err = r.Commands.SetStreamMetadata(ctx, streamID, m)
	if err != nil {
		return nil, err
	}
	return toStream(info), nil
}

// toStreamConnection is a page of at most n streams out of infos, read with one more than n to
// tell whether there is a next page.
func toStreamConnection(infos []eventstore.StreamInfo, n int) *model.StreamConnection {
	conn := &model.StreamConnection{PageInfo: &model.PageInfo{HasNextPage: len(infos) > n}, Edges: []*model.StreamEdge{}}
	for _, info := range infos[:min(n, len(infos))] {
		conn.Edges = append(conn.Edges, &model.StreamEdge{Cursor: info.ID, Node: toStream(info)})
	}
	if len(conn.Edges) > 0 {
		end := conn.Edges[len(conn.Edges)-1].Cursor
		conn.PageInfo.EndCursor = &end
	}
	return conn
}
