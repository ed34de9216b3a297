package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
)

// until turns asOf / atVersion into a replay bound; ok is false when neither is given.
func (r *Resolver) until(ctx context.Context, asOf *time.Time, atVersion *int) (u command.Until, ok bool, err error) {
	switch {
	case asOf != nil && atVersion != nil:
		return u, false, &eventstore.ValidationError{Field: "asOf", Reason: "give asOf or atVersion, not both"}
	case atVersion != nil:
		if *atVersion < 1 {
			return u, false, &eventstore.ValidationError{Field: "atVersion", Reason: "must be at least 1"}
		}
		return command.Until{Version: int64(*atVersion)}, true, nil
	case asOf != nil:
		before, err := r.asOf(ctx, *asOf)
		return command.Until{Before: before}, true, err
	}
	return u, false, nil
}

// asOf finds the end of the log as of t, waiting (as consistentWith does) for transactions
// that began by t to end. A time in the future has no settled log yet and is refused.
func (r *Resolver) asOf(ctx context.Context, t time.Time) (eventstore.Position, error) {
	if t.After(time.Now()) {
		return eventstore.Position{}, &eventstore.ValidationError{Field: "asOf", Reason: fmt.Sprintf("%s is in the future", t.Format(time.RFC3339Nano))}
	}
	settle := r.ConsistencyTimeout
	if settle <= 0 {
		settle = DefaultConsistencyTimeout
	}
	return r.Store.AsOf(ctx, t, settle)
}

// jsonOrNull is v, or null for a field a state does not have.
func jsonOrNull(v json.RawMessage) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	return v
}

// stateAt is an aggregate's state with asOf or atVersion: a replay, never the projection. ok
// is false when the aggregate did not exist then, or has no such version.
func stateAt[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], id string, u command.Until) (l command.Loaded[S], ok bool, err error) {
	return replayedAt(ctx, r, u, func(sd side) (command.Loaded[S], error) {
		return command.For(sd.commands, def).Until(ctx, id, u)
	})
}

// replayedAt is stateAt with the replay given: until replays the aggregate to u on a side.
func replayedAt[S any](ctx context.Context, r *Resolver, u command.Until, until func(side) (command.Loaded[S], error)) (l command.Loaded[S], ok bool, err error) {
	err = r.readBefore(ctx, u.Before, func(sd side) (err error) {
		l, err = until(sd)
		if err == nil && sd.replica && u.Version > l.Version {
			return errBehind // or the version does not exist: the primary says which
		}
		return err
	})
	if err != nil || !l.Exists() || u.Version > l.Version {
		return l, false, err
	}
	return l, true, nil
}

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
	steps := func(s side) ([]command.Step[S], error) { return command.For(s.commands, def).History(ctx, id) }
	return historyOf(ctx, r, steps, command.For(r.Commands, def).Fields, first, after)
}

// historyOf is history with the replay given: replay reads the aggregate's whole history on a
// side, and fields shows a state as clients see it (none while the aggregate does not exist).
func historyOf[S any](ctx context.Context, r *Resolver, replay func(side) ([]command.Step[S], error), fields func(command.Loaded[S]) []domain.Field, first *int, after *string) ([]historyEntry[S], *model.PageInfo, error) {
	var steps []command.Step[S]
	err := r.read(ctx, func(s side) (err error) {
		steps, err = replay(s)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	from, to, err := r.historyPage(ctx, len(steps), first, after)
	if err != nil {
		return nil, nil, err
	}
	info := &model.PageInfo{HasNextPage: to < len(steps), EndCursor: after}
	var prev command.Loaded[S]
	if from > 0 {
		prev = command.Loaded[S]{State: steps[from-1].State, Version: steps[from-1].Event.Version}
	}
	entries := make([]historyEntry[S], 0, to-from)
	for _, st := range steps[from:to] {
		next := command.Loaded[S]{State: st.State, Version: st.Event.Version}
		cursor := strconv.FormatInt(st.Event.Version, 10)
		entries = append(entries, historyEntry[S]{cursor: cursor, event: toEvent(st.Event), loaded: next, changes: changes(fields(prev), fields(next))})
		info.EndCursor = &entries[len(entries)-1].cursor
		prev = next
	}
	return entries, info, nil
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

// changes lists the fields whose values differ between two states, in the order the aggregate
// lists its fields (a field only the state before has comes after those of the state after).
func changes(before, after []domain.Field) []*model.FieldChange {
	values := func(fields []domain.Field) map[string]json.RawMessage {
		m := make(map[string]json.RawMessage, len(fields))
		for _, f := range fields {
			m[f.Name], _ = json.Marshal(f.Value)
		}
		return m
	}
	b, a := values(before), values(after)
	out := []*model.FieldChange{}
	seen := map[string]bool{}
	for _, f := range append(slices.Clone(after), before...) {
		if seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		vb, inBefore := b[f.Name]
		va, inAfter := a[f.Name]
		if string(jsonOrNull(va)) == string(jsonOrNull(vb)) {
			continue
		}
		ch := &model.FieldChange{Field: f.Name}
		if inBefore {
			ch.Before = vb
		}
		if inAfter {
			ch.After = va
		}
		out = append(out, ch)
	}
	return out
}

// DefaultMaxReplayEvents bounds the replay behind a list as of a time unless configured.
const DefaultMaxReplayEvents = 100_000

func (r *Resolver) maxReplay() int {
	if r.MaxReplayEvents > 0 {
		return r.MaxReplayEvents
	}
	return DefaultMaxReplayEvents
}
