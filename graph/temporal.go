package graph

import (
	"context"
	"fmt"
	"strconv"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// historyPage picks the page of a history: after is a version (the cursor of an entry).
func (r *Resolver) historyPage(ctx context.Context, n int, first *int, after *string) (from, to int, err error) {
	size, err := r.pageSizeDefault(ctx, first, 20)
	if err != nil {
		return 0, 0, err
	}
	if after != nil && *after != "" {
		// Only the form the server hands out, as with positions and ids ("+5" and "007" are not
		// cursors), and only the start of a refused one in the message: it may be a megabyte.
		v, err := strconv.Atoi(*after)
		if err != nil || v < 0 || strconv.Itoa(v) != *after {
			return 0, 0, &eventstore.ValidationError{Field: "after", Reason: fmt.Sprintf("%.64q is not a cursor of this history", *after)}
		}
		from = min(v, n)
	}
	return from, min(from+size, n), nil
}

// historyEntry is one entry of an aggregate's history: its cursor (the event's version), the
// event, the state after it and the fields it changed.
type historyEntry[S any] struct {
	cursor  string
	event   *model.Event
	loaded  command.Loaded[S]
	changes []*model.FieldChange
}

// history is a page of an aggregate's history, and its page info.
func history[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], id string, first *int, after *string) ([]historyEntry[S], *model.PageInfo, error) {
	all, err := service.History(ctx, r.svc(), def, id)
	if err != nil {
		return nil, nil, err
	}
	from, to, err := r.historyPage(ctx, len(all), first, after)
	if err != nil {
		return nil, nil, err
	}
	info := &model.PageInfo{HasNextPage: to < len(all), EndCursor: after}
	entries := make([]historyEntry[S], 0, to-from)
	for _, e := range all[from:to] {
		cursor := strconv.FormatInt(e.Event.Version, 10)
		entries = append(entries, historyEntry[S]{cursor: cursor, event: toEvent(e.Event), loaded: e.After, changes: toChanges(e.Changes)})
		info.EndCursor = &entries[len(entries)-1].cursor
	}
	return entries, info, nil
}

func toChanges(in []service.Change) []*model.FieldChange {
	out := make([]*model.FieldChange, len(in))
	for i, c := range in {
		out[i] = &model.FieldChange{Field: c.Field, Before: c.Before, After: c.After}
	}
	return out
}

func (r *Resolver) userHistory(ctx context.Context, id string, first *int, after *string) (*model.UserHistoryConnection, error) {
	entries, info, err := history(ctx, r, user.Definition(), id, first, after)
	if err != nil {
		return nil, err
	}
	c := &model.UserHistoryConnection{Edges: make([]*model.UserHistoryEdge, len(entries)), PageInfo: info}
	for i, e := range entries {
		c.Edges[i] = &model.UserHistoryEdge{Cursor: e.cursor, Node: &model.UserHistoryEntry{Event: e.event, State: toUser(e.loaded.State), Changes: e.changes}}
	}
	return c, nil
}

func (r *Resolver) orderHistory(ctx context.Context, id string, first *int, after *string) (*model.OrderHistoryConnection, error) {
	entries, info, err := history(ctx, r, order.Definition(), id, first, after)
	if err != nil {
		return nil, err
	}
	c := &model.OrderHistoryConnection{Edges: make([]*model.OrderHistoryEdge, len(entries)), PageInfo: info}
	for i, e := range entries {
		c.Edges[i] = &model.OrderHistoryEdge{Cursor: e.cursor, Node: &model.OrderHistoryEntry{Event: e.event, State: toOrder(e.loaded.State), Changes: e.changes}}
	}
	return c, nil
}

// DefaultMaxReplayEvents bounds the replay behind a list as of a time unless configured.
const DefaultMaxReplayEvents = service.DefaultMaxReplayEvents
