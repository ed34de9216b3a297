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
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/store/readmodel"
)

// An aggregate's resolvers call the application layer's functions for every aggregate
// (internal/service: One, List, History, Execute, Follow, Load) through the few below, which
// add what is GraphQL's: page arguments, data loaders, result types.

// one is an aggregate by id, with consistentWith, asOf and atVersion (service.One).
func one[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], id string, consistentWith *string, asOf *time.Time, atVersion *int) (command.Loaded[S], bool, error) {
	return service.One(ctx, r.svc(), def, id, consistentWith, asOf, atVersion)
}

// list is a page of an aggregate's read model (service.List) and its page info.
func list[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], first *int, after *string, filters readmodel.Filters, consistentWith *string, asOf *time.Time) ([]command.Loaded[S], *model.PageInfo, error) {
	p, err := r.page(ctx, first, 20, after)
	if err != nil {
		return nil, nil, err
	}
	page, err := service.List(ctx, r.svc(), def, filters, p, consistentWith, asOf)
	if err != nil {
		return nil, nil, err
	}
	info := &model.PageInfo{HasNextPage: page.More, EndCursor: after}
	out := make([]command.Loaded[S], len(page.Items))
	for i, it := range page.Items {
		out[i] = it.Loaded
		info.EndCursor = &page.Items[i].ID
	}
	return out, info, nil
}

// execute runs a command on an aggregate, or plans it without writing when dryRun is true.
func execute[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C], dryRun *bool, call command.Call[S, C]) (command.Result[S], error) {
	return service.Execute(ctx, r.svc(), def, dryRun != nil && *dryRun, call)
}

// byID is the request's data loader of an aggregate by id (service.Load): every read of one
// level of a response in one statement.
func byID[S any, E domain.Event, C any](ctx context.Context, r *Resolver, def domain.Aggregate[S, E, C]) *dataloader.Loader[string, command.Loaded[S]] {
	l := r.loadersFor(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if got, ok := l.byID[def.Category]; ok {
		return got.(*dataloader.Loader[string, command.Loaded[S]])
	}
	load := func(ctx context.Context, ids []string) []*dataloader.Result[command.Loaded[S]] {
		found, err := service.Load(ctx, r.svc(), def, ids)
		out := make([]*dataloader.Result[command.Loaded[S]], len(ids))
		for i, id := range ids {
			out[i] = &dataloader.Result[command.Loaded[S]]{Data: found[id], Error: err}
		}
		return out
	}
	got := dataloader.NewBatchedLoader(load, dataloader.WithWait[string, command.Loaded[S]](r.loaderWait()))
	if l.byID == nil {
		l.byID = map[string]any{}
	}
	l.byID[def.Category] = got
	return got
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
			f.Set(reflect.ValueOf(toCommandEvents(res.Events)))
		case v.Type().Field(i).Name == "DryRun":
			f.SetBool(res.DryRun)
		}
	}
	return out, nil
}
