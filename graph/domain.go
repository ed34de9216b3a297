package graph

import (
	"context"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/query"
)

func optionalExpected(v *int) *int64 {
	if v == nil {
		return nil
	}
	x := int64(*v)
	return &x
}

// commands is the command handler, or its dry-run twin when dryRun is true.
func (r *Resolver) commands(dryRun *bool) *command.Handler {
	if dryRun != nil && *dryRun {
		return r.Commands.DryRun()
	}
	return r.Commands
}

func userResult(res command.UserResult, err error) (*model.UserResult, error) {
	if err != nil {
		return nil, err
	}
	return &model.UserResult{User: toUser(res.User), Position: res.Position.String(), Events: toCommandEvents(res.Events), DryRun: res.DryRun}, nil
}

func orderResult(res command.OrderResult, err error) (*model.OrderResult, error) {
	if err != nil {
		return nil, err
	}
	return &model.OrderResult{Order: toOrder(res.Order), Position: res.Position.String(), Events: toCommandEvents(res.Events), DryRun: res.DryRun}, nil
}

func toCommandEvents(in []command.Planned) []*model.CommandEvent {
	out := make([]*model.CommandEvent, len(in))
	for i, e := range in {
		out[i] = &model.CommandEvent{StreamID: e.StreamID, Version: int(e.Version), Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Tags: append([]string{}, e.Tags...)}
	}
	return out
}

// page checks a page's arguments: first against the cap (default def), after as an id.
func (r *Resolver) page(ctx context.Context, first *int, def int, after *string) (query.Page, error) {
	n, err := r.pageSizeDefault(ctx, first, def)
	if err != nil {
		return query.Page{}, err
	}
	p := query.Page{First: n}
	if after != nil && *after != "" {
		if p.After, err = command.ParseID("after", *after); err != nil {
			return query.Page{}, err
		}
	}
	return p, nil
}

func toProjection(in projection.Info) *model.Projection {
	return &model.Projection{Name: in.Name, Position: in.Position, Lag: int(in.Lag), Skipped: int(in.Skipped), Status: model.ProjectionStatus(in.Status)}
}

func orderConnection(list []order.State, more bool, after *string) *model.OrderConnection {
	c := &model.OrderConnection{Edges: make([]*model.OrderEdge, len(list)), PageInfo: &model.PageInfo{HasNextPage: more, EndCursor: after}}
	for i, s := range list {
		c.Edges[i] = &model.OrderEdge{Cursor: s.ID, Node: toOrder(s)}
		c.PageInfo.EndCursor = &c.Edges[i].Cursor
	}
	return c
}
