package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/service"
)

// The generic, read-only surface over the registry (aggregateKinds, aggregate): any registered
// aggregate, known only as a domain.Kind, replayed with command.ForKind and shown as its
// declaration's Fields. It pages and fails as the typed fields' history and time travel do,
// through the application layer (service.KindAt, KindHistory), so a new aggregate gets it, and the
// Explorer's aggregate view, from its registration alone.

// aggregateKinds are the registered aggregates, in the registry's order. The registry is fixed
// when the server starts, so it reads nothing and the request's context is not needed.
func (r *Resolver) aggregateKinds(context.Context) []*model.AggregateKind {
	kinds := r.svc().Aggregates()
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

// aggregateAt is an aggregate of any registered kind, now or at a version or a time
// (service.KindAt); nil when it does not exist (then), or has no such version.
func (r *Resolver) aggregateAt(ctx context.Context, category, id string, atVersion *int, asOf *time.Time) (*model.AggregateState, error) {
	k, err := r.svc().Kind(category)
	if err != nil {
		return nil, err
	}
	u, _, err := r.svc().Until(ctx, asOf, atVersion)
	if err != nil {
		return nil, err
	}
	l, fields, ok, err := service.KindAt(ctx, r.svc(), k, id, u)
	if err != nil || !ok {
		return nil, err
	}
	obj, err := fieldsJSON(fields)
	if err != nil {
		return nil, err
	}
	return &model.AggregateState{Category: category, ID: id, Version: int(l.Version), Fields: obj}, nil
}

// aggregateHistory is a page of the history of an aggregate of any registered kind
// (service.KindHistory).
func (r *Resolver) aggregateHistory(ctx context.Context, obj *model.AggregateState, first *int, after *string) (*model.AggregateHistoryConnection, error) {
	k, err := r.svc().Kind(obj.Category)
	if err != nil {
		return nil, err
	}
	all, err := service.KindHistory(ctx, r.svc(), k, obj.ID)
	if err != nil {
		return nil, err
	}
	from, to, err := r.historyPage(ctx, len(all), first, after)
	if err != nil {
		return nil, err
	}
	c := &model.AggregateHistoryConnection{Edges: make([]*model.AggregateHistoryEdge, 0, to-from), PageInfo: &model.PageInfo{HasNextPage: to < len(all), EndCursor: after}}
	for _, e := range all[from:to] {
		fields, err := fieldsJSON(e.Fields)
		if err != nil {
			return nil, err
		}
		cursor := strconv.FormatInt(e.Event.Version, 10)
		c.Edges = append(c.Edges, &model.AggregateHistoryEdge{Cursor: cursor, Node: &model.AggregateHistoryEntry{Event: toEvent(e.Event), Fields: fields, Changes: toChanges(e.Changes)}})
		c.PageInfo.EndCursor = &c.Edges[len(c.Edges)-1].Cursor
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
