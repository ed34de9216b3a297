package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/projection"
	"github.com/strata-es/strata/internal/readmodel"
)

// What every registered aggregate gets from the API, whatever its fields: one (its field by id,
// with consistentWith, asOf and atVersion), list (its list, with filters, consistentWith and
// asOf), execute (its mutations, with dryRun), byID (a data loader), history (history.go's
// entries) and followAggregate (its subscription, live.go). An aggregate's resolvers call these
// and only translate arguments and results.

// modelOf is def's read model. An aggregate that declares none has no list and no read by id
// (one then replays the stream).
func modelOf[S any, E domain.Event, C any](def domain.Aggregate[S, E, C]) (readmodel.Model, bool) {
	return readmodel.Of(def)
}

func loaded[S any](r readmodel.Row) command.Loaded[S] {
	return command.Loaded[S]{State: r.State.(S), Version: r.Version}
}

// one is an aggregate by id: from its read model, or, with asOf or atVersion, replayed to then.
// ok is false when there is no such aggregate (then).
func one[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], id string, consistentWith *string, asOf *time.Time, atVersion *int) (l command.Loaded[S], ok bool, err error) {
	if _, err := command.ParseID("id", id); err != nil {
		return l, false, err
	}
	u, travel, err := r.until(ctx, asOf, atVersion)
	if err != nil {
		return l, false, err
	}
	m, listed := modelOf(def)
	if travel || !listed {
		if !travel {
			if err := r.readConsistent(ctx, consistentWith, func(side) error { return nil }); err != nil {
				return l, false, err
			}
		}
		return stateAt(ctx, r, def, id, u)
	}
	var found map[string]readmodel.Row
	err = r.readConsistent(ctx, consistentWith, func(s side) (err error) {
		found, err = s.reader.ByID(ctx, m, []string{id})
		return err
	})
	row, ok := found[id]
	if err != nil || !ok {
		return l, false, err
	}
	return loaded[S](row), true, nil
}

// list is a page of an aggregate's read model in id order, narrowed by filters: the table, or,
// with asOf, the read model as it was then, replayed in memory by the projector's own code.
func list[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], first *int, after *string, filters readmodel.Filters, consistentWith *string, asOf *time.Time) ([]command.Loaded[S], *model.PageInfo, error) {
	m, ok := modelOf(def)
	if !ok {
		return nil, nil, fmt.Errorf("the %s aggregate declares no read model", def.Name)
	}
	p, err := r.page(ctx, first, 20, after)
	if err != nil {
		return nil, nil, err
	}
	var (
		rows []readmodel.Row
		more bool
	)
	if asOf != nil {
		if err := r.readConsistent(ctx, consistentWith, func(side) error { return nil }); err != nil {
			return nil, nil, err
		}
		before, err := r.asOf(ctx, *asOf)
		if err != nil {
			return nil, nil, err
		}
		var mem readmodel.Memory
		err = r.readBefore(ctx, before, func(s side) (err error) {
			mem, err = projection.AsOf(ctx, s.store, m, before, r.maxReplay())
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		rows, more, err = m.ListMemory(mem, filters, p)
		if err != nil {
			return nil, nil, err
		}
	} else {
		err = r.readConsistent(ctx, consistentWith, func(s side) (err error) {
			rows, more, err = s.reader.List(ctx, m, filters, p)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	out := make([]command.Loaded[S], len(rows))
	info := &model.PageInfo{HasNextPage: more, EndCursor: after}
	for i, row := range rows {
		out[i] = loaded[S](row)
		info.EndCursor = &rows[i].ID
	}
	return out, info, nil
}

// execute runs a command on an aggregate, or plans it without writing when dryRun is true. The
// id of an existing aggregate is checked first.
func execute[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], dryRun *bool, call command.Call[S, C]) (command.Result[S], error) {
	if !call.New {
		id, err := command.ParseID("id", call.ID)
		if err != nil {
			return command.Result[S]{}, err
		}
		call.ID = id
	}
	return command.For(r.commands(dryRun), def).Execute(ctx, call)
}

// commandEvents are the events a command appended (or would append), as the API shows them.
func commandEvents[S any](res command.Result[S]) []*model.CommandEvent {
	return toCommandEvents(res.Events)
}

// byID is the request's data loader of an aggregate by id: every read of one level of a
// response in one statement. An aggregate its read model has not reached yet (just created)
// is replayed from its stream where the read model was read, so a reference is never missing;
// one that does not exist loads as the zero Loaded.
func byID[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C]) *dataloader.Loader[string, command.Loaded[S]] {
	l := r.loadersFor(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if got, ok := l.byID[def.Category]; ok {
		return got.(*dataloader.Loader[string, command.Loaded[S]])
	}
	m, listed := modelOf(def)
	load := func(ctx context.Context, ids []string) []*dataloader.Result[command.Loaded[S]] {
		out := make([]*dataloader.Result[command.Loaded[S]], len(ids))
		found := map[string]command.Loaded[S]{}
		err := r.read(ctx, func(s side) error {
			if listed {
				rows, err := s.reader.ByID(ctx, m, ids)
				if err != nil {
					return err
				}
				for id, row := range rows {
					found[id] = loaded[S](row)
				}
			}
			for _, id := range ids {
				if _, ok := found[id]; !ok {
					l, err := command.For(s.commands, def).Load(ctx, id)
					if err != nil {
						return err
					}
					found[id] = l
				}
			}
			return nil
		})
		for i, id := range ids {
			out[i] = &dataloader.Result[command.Loaded[S]]{Data: found[id], Error: err}
		}
		return out
	}
	got := dataloader.NewBatchedLoader(load, dataloader.WithWait[string, command.Loaded[S]](loaderWait))
	if l.byID == nil {
		l.byID = map[string]any{}
	}
	l.byID[def.Category] = got
	return got
}

// readModelNames are the registered aggregates' read models: what consistentWith waits for.
func (r *Resolver) readModelNames() []string {
	var names []string
	for _, m := range readmodel.All(r.aggregates()) {
		names = append(names, m.Name())
	}
	return names
}

// toModel is an aggregate as its GraphQL type M: the state's JSON fields, matched to M's by
// name ignoring case (ID to id, SKU to sku), and the stream's version. It fits a GraphQL type
// that shows the state's fields as they are; User and Order, whose types show some fields only
// in some states, convert by hand.
func toModel[M, S any](l command.Loaded[S]) *M {
	out := new(M)
	data, err := json.Marshal(l.State)
	if err != nil {
		panic(fmt.Sprintf("the state of an aggregate does not encode: %v", err)) // the runtime encodes every state it snapshots
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		panic(fmt.Sprintf("the state of an aggregate is not a JSON object: %v", err))
	}
	for k := range fields {
		if strings.EqualFold(k, "version") {
			delete(fields, k)
		}
	}
	fields["version"] = json.RawMessage(strconv.FormatInt(l.Version, 10))
	if data, err = json.Marshal(fields); err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		panic(fmt.Sprintf("the state of an aggregate does not fit its GraphQL type %T: %v", out, err))
	}
	return out
}

// mutate runs call on def's aggregate, a dry run when dryRun is true, and answers with R, the
// mutation's result type: its field of type *M holds the aggregate after the command, and its
// fields Position, Events and DryRun what they say.
func mutate[R, M any, S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], dryRun *bool, call command.Call[S, C]) (*R, error) {
	res, err := execute(ctx, r, def, dryRun, call)
	if err != nil {
		return nil, err
	}
	out := new(R)
	v := reflect.ValueOf(out).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); {
		case f.Type() == reflect.TypeFor[*M]():
			f.Set(reflect.ValueOf(toModel[M](res.Loaded)))
		case v.Type().Field(i).Name == "Position":
			f.SetString(res.Position.String())
		case v.Type().Field(i).Name == "Events":
			f.Set(reflect.ValueOf(commandEvents(res)))
		case v.Type().Field(i).Name == "DryRun":
			f.SetBool(res.DryRun)
		}
	}
	return out, nil
}
