package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// DefaultMaxPageSize caps first on every connection unless configured otherwise.
const DefaultMaxPageSize = 1000

func toEvent(e eventstore.RecordedEvent) *model.Event {
	out := &model.Event{
		ID: e.ID.String(), StreamID: e.StreamID, Version: int(e.Version), Position: e.Position.String(),
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt,
		Raw:      &model.StoredPayload{SchemaVersion: e.SchemaVersion, Data: e.Data},
		Redacted: append([]string{}, e.Redacted...), Tags: e.Tags,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if e.Stored != nil {
		out.Raw = &model.StoredPayload{SchemaVersion: e.Stored.SchemaVersion, Data: e.Stored.Data}
	}
	if e.UpcastErr != nil {
		msg := e.UpcastErr.Error()
		out.UpcastError = &msg
	}
	return out
}

// connection makes a page of events. The caller read one event more than first: its presence
// says there is a next page. empty is the endCursor of a page without events.
func connection(events []eventstore.RecordedEvent, first int, empty *string) *model.EventConnection {
	hasNext := len(events) > first
	if hasNext {
		events = events[:first]
	}
	c := &model.EventConnection{Edges: make([]*model.EventEdge, len(events)), PageInfo: &model.PageInfo{HasNextPage: hasNext, EndCursor: empty}}
	for i, e := range events {
		c.Edges[i] = &model.EventEdge{Cursor: e.Position.String(), Node: toEvent(e)}
	}
	if len(events) > 0 {
		c.PageInfo.EndCursor = &c.Edges[len(events)-1].Cursor
	}
	return c
}

// pageSize checks a connection's first argument against the cap. The schema's default for
// first is lowered to the cap when the server is configured below it.
func (r *Resolver) pageSize(ctx context.Context, first *int) (int, error) {
	return r.pageSizeDefault(ctx, first, 100)
}

// pageSizeDefault is pageSize for a connection whose schema default for first is def.
func (r *Resolver) pageSizeDefault(ctx context.Context, first *int, def int) (int, error) {
	limit := r.MaxPageSize
	if limit <= 0 {
		limit = DefaultMaxPageSize
	}
	n := min(def, limit)
	if first != nil && argGiven(ctx, "first") {
		n = *first
	}
	if n < 1 || n > limit {
		return 0, &eventstore.ValidationError{Field: "first", Reason: fmt.Sprintf("%d is outside 1..%d (the server's page cap)", n, limit)}
	}
	return n, nil
}

// toEventData turns the GraphQL input of an append into the store's.
func toEventData(in []*model.EventInput) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(in))
	for i, e := range in {
		out[i] = eventstore.EventData{Type: e.Type, Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
		if e.ID != nil {
			id, err := uuid.Parse(*e.ID)
			if err != nil {
				return nil, &eventstore.ValidationError{Field: fmt.Sprintf("events[%d].id", i), Reason: fmt.Sprintf("%q is not a uuid", *e.ID)}
			}
			out[i].ID = id
		}
		if e.SchemaVersion != nil {
			if *e.SchemaVersion < 1 {
				return nil, &eventstore.ValidationError{Field: fmt.Sprintf("events[%d].schemaVersion", i), Reason: "must be at least 1"}
			}
			out[i].SchemaVersion = *e.SchemaVersion
		}
	}
	return out, nil
}

// argGiven reports whether the request spelled out the field argument name, as opposed to
// leaving it to the schema's default.
func argGiven(ctx context.Context, name string) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return false
	}
	return fc.Field.Arguments.ForName(name) != nil
}

// toQuery is a query of the log as the store takes it.
func toQuery(q *model.EventQueryInput) eventstore.Query {
	out := eventstore.Query{Items: make([]eventstore.QueryItem, len(q.Items))}
	for i, it := range q.Items {
		out.Items[i] = eventstore.QueryItem{Types: it.Types, Tags: it.Tags}
	}
	return out
}

// toCondition is an append's condition as the store takes it; nil for none.
func toCondition(c *model.AppendConditionInput) (*eventstore.Condition, error) {
	if c == nil {
		return nil, nil
	}
	out := &eventstore.Condition{FailIfEventsMatch: toQuery(c.FailIfEventsMatch)}
	if c.After != nil {
		p, err := eventstore.ParsePosition(*c.After)
		if err != nil {
			return nil, &eventstore.ValidationError{Field: "condition.after", Reason: fmt.Sprintf("%q is not a position this store handed out", *c.After)}
		}
		out.After = p
	}
	return out, nil
}

// inWrite puts a field error of write i in the writes list.
func inWrite(i int, err error) error {
	var v *eventstore.ValidationError
	if errors.As(err, &v) {
		return &eventstore.ValidationError{Field: fmt.Sprintf("writes[%d].%s", i, v.Field), Reason: v.Reason}
	}
	return err
}
