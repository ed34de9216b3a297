package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
	"github.com/strata-es/strata/internal/projection"
	"github.com/strata-es/strata/internal/query"
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

// userAt is Query.user with asOf or atVersion: a replay, never the projection.
func (r *Resolver) userAt(ctx context.Context, id string, u command.Until) (*model.User, error) {
	var s user.State
	err := r.readBefore(ctx, u.Before, func(sd side) (err error) {
		s, err = sd.commands.UserUntil(ctx, id, u)
		if err == nil && sd.replica && u.Version > s.Version {
			return errBehind // or the version does not exist: the primary says which
		}
		return err
	})
	if err != nil || !s.Exists() || u.Version > s.Version {
		return nil, err
	}
	return toUser(s), nil
}

// orderAt is Query.order with asOf or atVersion.
func (r *Resolver) orderAt(ctx context.Context, id string, u command.Until) (*model.Order, error) {
	var s order.State
	err := r.readBefore(ctx, u.Before, func(sd side) (err error) {
		s, err = sd.commands.OrderUntil(ctx, id, u)
		if err == nil && sd.replica && u.Version > s.Version {
			return errBehind // or the version does not exist: the primary says which
		}
		return err
	})
	if err != nil || !s.Exists() || u.Version > s.Version {
		return nil, err
	}
	return toOrder(s), nil
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

func (r *Resolver) userHistory(ctx context.Context, id string, first *int, after *string) (*model.UserHistoryConnection, error) {
	var steps []command.Step[user.State]
	err := r.read(ctx, func(s side) (err error) {
		steps, err = s.commands.UserHistory(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	from, to, err := r.historyPage(ctx, len(steps), first, after)
	if err != nil {
		return nil, err
	}
	c := &model.UserHistoryConnection{Edges: []*model.UserHistoryEdge{}, PageInfo: &model.PageInfo{HasNextPage: to < len(steps), EndCursor: after}}
	prev := user.State{}
	if from > 0 {
		prev = steps[from-1].State
	}
	for _, st := range steps[from:to] {
		cursor := strconv.FormatInt(st.Event.Version, 10)
		c.Edges = append(c.Edges, &model.UserHistoryEdge{Cursor: cursor, Node: &model.UserHistoryEntry{
			Event: toEvent(st.Event), State: toUser(st.State), Changes: changes(userFields(prev), userFields(st.State)),
		}})
		c.PageInfo.EndCursor = &c.Edges[len(c.Edges)-1].Cursor
		prev = st.State
	}
	return c, nil
}

func (r *Resolver) orderHistory(ctx context.Context, id string, first *int, after *string) (*model.OrderHistoryConnection, error) {
	var steps []command.Step[order.State]
	err := r.read(ctx, func(s side) (err error) {
		steps, err = s.commands.OrderHistory(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	from, to, err := r.historyPage(ctx, len(steps), first, after)
	if err != nil {
		return nil, err
	}
	c := &model.OrderHistoryConnection{Edges: []*model.OrderHistoryEdge{}, PageInfo: &model.PageInfo{HasNextPage: to < len(steps), EndCursor: after}}
	prev := order.State{}
	if from > 0 {
		prev = steps[from-1].State
	}
	for _, st := range steps[from:to] {
		cursor := strconv.FormatInt(st.Event.Version, 10)
		c.Edges = append(c.Edges, &model.OrderHistoryEdge{Cursor: cursor, Node: &model.OrderHistoryEntry{
			Event: toEvent(st.Event), State: toOrder(st.State), Changes: changes(orderFields(prev), orderFields(st.State)),
		}})
		c.PageInfo.EndCursor = &c.Edges[len(c.Edges)-1].Cursor
		prev = st.State
	}
	return c, nil
}

// userFields are a user's fields as the schema shows them, for comparing two states.
func userFields(s user.State) map[string]any {
	if !s.Exists() {
		return map[string]any{}
	}
	return map[string]any{"name": s.Name, "email": s.Email, "status": string(s.Status)}
}

// orderFields are an order's fields as the schema shows them (money as decimal strings).
func orderFields(s order.State) map[string]any {
	if !s.Exists() {
		return map[string]any{}
	}
	items := make([]map[string]any, len(s.Items))
	for i, it := range s.Items {
		items[i] = map[string]any{"sku": it.SKU, "quantity": it.Quantity, "unitPrice": it.UnitPrice.String()}
	}
	f := map[string]any{"status": string(s.Status), "customerId": s.CustomerID, "items": items, "total": s.Total.String()}
	if s.Carrier != "" || s.TrackingNumber != "" {
		f["carrier"], f["trackingNumber"] = s.Carrier, s.TrackingNumber
	}
	if s.CancelReason != "" {
		f["cancelReason"] = s.CancelReason
	}
	return f
}

// changes lists the fields whose values differ between two states, in the order fieldOrder
// gives, then alphabetically for any other.
func changes(before, after map[string]any) []*model.FieldChange {
	out := []*model.FieldChange{}
	for _, name := range fieldNames(before, after) {
		b, _ := json.Marshal(before[name])
		a, _ := json.Marshal(after[name])
		if string(a) == string(b) {
			continue
		}
		ch := &model.FieldChange{Field: name}
		if _, ok := before[name]; ok {
			ch.Before = b
		}
		if _, ok := after[name]; ok {
			ch.After = a
		}
		out = append(out, ch)
	}
	return out
}

func fieldNames(maps ...map[string]any) []string {
	order := []string{"name", "email", "status", "customerId", "items", "total", "carrier", "trackingNumber", "cancelReason"}
	seen := map[string]bool{}
	var out []string
	for _, n := range order {
		for _, m := range maps {
			if _, ok := m[n]; ok && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// usersAsOf lists users as of t from an in-memory read model built by the live projection's code.
func (r *Resolver) usersAsOf(ctx context.Context, t time.Time, f query.UserFilter, p query.Page) ([]user.State, bool, error) {
	before, err := r.asOf(ctx, t)
	if err != nil {
		return nil, false, err
	}
	var rows map[string]user.State
	err = r.readBefore(ctx, before, func(s side) (err error) {
		rows, err = projection.UsersAsOf(ctx, s.store, before, r.maxReplay())
		return err
	})
	if err != nil {
		return nil, false, err
	}
	var list []user.State
	for _, s := range rows {
		if (f.Status == "" || s.Status == f.Status) && (f.EmailContains == "" || strings.Contains(strings.ToLower(s.Email), strings.ToLower(f.EmailContains))) && s.ID > p.After {
			list = append(list, s)
		}
	}
	slices.SortFunc(list, func(a, b user.State) int { return strings.Compare(a.ID, b.ID) })
	return pageOf(list, p.First)
}

// ordersAsOf lists orders as of t, as usersAsOf.
func (r *Resolver) ordersAsOf(ctx context.Context, t time.Time, f query.OrderFilter, p query.Page) ([]order.State, bool, error) {
	before, err := r.asOf(ctx, t)
	if err != nil {
		return nil, false, err
	}
	var rows map[string]order.State
	err = r.readBefore(ctx, before, func(s side) (err error) {
		rows, err = projection.OrdersAsOf(ctx, s.store, before, r.maxReplay())
		return err
	})
	if err != nil {
		return nil, false, err
	}
	var list []order.State
	for _, s := range rows {
		if (f.Status == "" || s.Status == f.Status) && (f.CustomerID == "" || s.CustomerID == f.CustomerID) && s.ID > p.After {
			list = append(list, s)
		}
	}
	slices.SortFunc(list, func(a, b order.State) int { return strings.Compare(a.ID, b.ID) })
	return pageOf(list, p.First)
}

func pageOf[S any](list []S, first int) ([]S, bool, error) {
	if len(list) > first {
		return list[:first], true, nil
	}
	return list, false, nil
}

// DefaultMaxReplayEvents bounds the replay behind a list as of a time unless configured.
const DefaultMaxReplayEvents = 100_000

func (r *Resolver) maxReplay() int {
	if r.MaxReplayEvents > 0 {
		return r.MaxReplayEvents
	}
	return DefaultMaxReplayEvents
}
