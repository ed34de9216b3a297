package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/eventstore"
)

// The generic, read-only surface over the registry (aggregateKinds, aggregate): any registered
// aggregate, known only as a domain.Kind, replayed with command.ForKind and shown as its
// declaration's Fields. It pages and fails as the typed fields' history and time travel do,
// through the same helpers (until, replayedAt, historyOf), so a new aggregate gets it, and the
// Explorer's aggregate view, from its registration alone.

// aggregateKinds are the registered aggregates, in the registry's order. The registry is fixed
// when the server starts, so it reads nothing and the request's context is not needed.
func (r *Resolver) aggregateKinds(context.Context) []*model.AggregateKind {
	kinds := r.aggregates()
	out := make([]*model.AggregateKind, len(kinds))
	for i, k := range kinds {
		d := k.Describe()
		out[i] = &model.AggregateKind{Name: d.Name, Category: d.Category}
		if d.ReadModel != nil {
			table := d.ReadModel.Table
			out[i].ReadModel = &table
		}
	}
	return out
}

// kind is the registered aggregate of category; an unknown category is the client's error,
// naming the registered ones.
func (r *Resolver) kind(category string) (domain.Kind, error) {
	var names []string
	for _, k := range r.aggregates() {
		c := k.Describe().Category
		if c == category {
			return k, nil
		}
		names = append(names, c)
	}
	return nil, &eventstore.ValidationError{Field: "category", Reason: fmt.Sprintf("%.64q is not the category of a registered aggregate (%s)", category, strings.Join(names, ", "))}
}

// aggregateAt is an aggregate of any registered kind, now or at a version or a time; nil when it
// does not exist (then), or has no such version.
func (r *Resolver) aggregateAt(ctx context.Context, category, id string, atVersion *int, asOf *time.Time) (*model.AggregateState, error) {
	k, err := r.kind(category)
	if err != nil {
		return nil, err
	}
	if _, err := command.ParseID("id", id); err != nil {
		return nil, err
	}
	u, _, err := r.until(ctx, asOf, atVersion)
	if err != nil {
		return nil, err
	}
	var agg command.Kind
	l, ok, err := replayedAt(ctx, r, u, func(s side) (command.Loaded[any], error) {
		agg = command.ForKind(s.commands, k)
		return agg.Until(ctx, id, u)
	})
	if err != nil || !ok || !agg.Exists(l) {
		return nil, err
	}
	fields, err := fieldsJSON(agg.Fields(l))
	if err != nil {
		return nil, err
	}
	return &model.AggregateState{Category: category, ID: id, Version: int(l.Version), Fields: fields}, nil
}

// aggregateHistory is a page of the history of an aggregate of any registered kind.
func (r *Resolver) aggregateHistory(ctx context.Context, obj *model.AggregateState, first *int, after *string) (*model.AggregateHistoryConnection, error) {
	k, err := r.kind(obj.Category)
	if err != nil {
		return nil, err
	}
	agg := command.ForKind(r.Commands, k)
	steps := func(s side) ([]command.Step[any], error) { return command.ForKind(s.commands, k).History(ctx, obj.ID) }
	entries, info, err := historyOf(ctx, r, steps, agg.Fields, first, after)
	if err != nil {
		return nil, err
	}
	c := &model.AggregateHistoryConnection{Edges: make([]*model.AggregateHistoryEdge, len(entries)), PageInfo: info}
	for i, e := range entries {
		fields, err := fieldsJSON(agg.Fields(e.loaded))
		if err != nil {
			return nil, err
		}
		c.Edges[i] = &model.AggregateHistoryEdge{Cursor: e.cursor, Node: &model.AggregateHistoryEntry{Event: e.event, Fields: fields, Changes: e.changes}}
	}
	return c, nil
}

// fieldsJSON is a state's fields as one JSON object, in their order.
func fieldsJSON(fields []domain.Field) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		name, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("the field %s of a state does not encode: %w", f.Name, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
