package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/store/readmodel"
)

// What every registered aggregate gets, whatever its fields: One (by id, with consistentWith,
// asOf and atVersion), List (its read model, with filters, consistentWith and asOf), Load (many
// by id, for a transport's data loader), History (every event with the state after it and the
// fields it changed), Execute (its commands, with dry runs) and Follow (its state, live).

func loaded[S any](r readmodel.Row) command.Loaded[S] {
	return command.Loaded[S]{State: r.State.(S), Version: r.Version}
}

// One is an aggregate by id: from its read model, or, with asOf or atVersion, replayed to then
// (an aggregate without a read model is always replayed). ok is false when there is no such
// aggregate (then).
func One[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], id string, consistentWith *string, asOf *time.Time, atVersion *int) (l command.Loaded[S], ok bool, err error) {
	if id, err = command.ParseID("id", id); err != nil {
		return l, false, err
	}
	u, travel, err := s.Until(ctx, asOf, atVersion)
	if err != nil {
		return l, false, err
	}
	m, listed := readmodel.Of(def)
	if travel || !listed {
		if !travel {
			if err := s.ReadConsistent(ctx, consistentWith, func(Side) error { return nil }); err != nil {
				return l, false, err
			}
		}
		return StateAt(ctx, s, def, id, u)
	}
	var found map[string]readmodel.Row
	err = s.ReadConsistent(ctx, consistentWith, func(sd Side) (err error) {
		found, err = sd.Reader.ByID(ctx, m, []string{id})
		return err
	})
	row, ok := found[id]
	if err != nil || !ok {
		return l, false, err
	}
	return loaded[S](row), true, nil
}

// StateAt is an aggregate's state at u (a version, or before a position): a replay, never the
// read model. ok is false when the aggregate did not exist then, or has no such version.
func StateAt[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], id string, u command.Until) (command.Loaded[S], bool, error) {
	return replayedAt(ctx, s, u, func(sd Side) (command.Loaded[S], error) { return command.For(sd.Commands, def).Until(ctx, id, u) })
}

// replayedAt is StateAt with the replay given: until replays the aggregate to u on a side.
func replayedAt[S any](ctx context.Context, s *Service, u command.Until, until func(Side) (command.Loaded[S], error)) (l command.Loaded[S], ok bool, err error) {
	err = s.ReadBefore(ctx, u.Before, func(sd Side) (err error) {
		l, err = until(sd)
		if err == nil && sd.Replica && u.Version > l.Version {
			return ErrBehind // or the version does not exist: the primary says which
		}
		return err
	})
	if err != nil || !l.Exists() || u.Version > l.Version {
		return l, false, err
	}
	return l, true, nil
}

// List is a page of an aggregate's read model in id order, narrowed by filters: the table, or,
// with asOf, the read model as it was then, replayed in memory by the projector's own code.
func List[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], filters readmodel.Filters, p readmodel.Page, consistentWith *string, asOf *time.Time) (Page[S], error) {
	list, more, err := list(ctx, s, def, filters, p, consistentWith, asOf)
	return Page[S]{Items: list, More: more}, err
}

// Page is a page of a list: the aggregates in id order, and whether there is a next page.
type Page[S any] struct {
	Items []Listed[S]
	More  bool
}

// Listed is an aggregate of a list: its id, state and version.
type Listed[S any] struct {
	ID string
	command.Loaded[S]
}

func list[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], filters readmodel.Filters, p readmodel.Page, consistentWith *string, asOf *time.Time) (list []Listed[S], more bool, err error) {
	m, ok := readmodel.Of(def)
	if !ok {
		return nil, false, fmt.Errorf("the %s aggregate declares no read model", def.Name)
	}
	var rows []readmodel.Row
	if asOf != nil {
		if err := s.ReadConsistent(ctx, consistentWith, func(Side) error { return nil }); err != nil {
			return nil, false, err
		}
		before, err := s.AsOf(ctx, *asOf)
		if err != nil {
			return nil, false, err
		}
		var mem readmodel.Memory
		err = s.ReadBefore(ctx, before, func(sd Side) (err error) {
			mem, err = projection.AsOf(ctx, sd.Store, m, before, s.maxReplay())
			return err
		})
		if err != nil {
			return nil, false, err
		}
		if rows, more, err = m.ListMemory(mem, filters, p); err != nil {
			return nil, false, err
		}
	} else {
		err = s.ReadConsistent(ctx, consistentWith, func(sd Side) (err error) {
			rows, more, err = sd.Reader.List(ctx, m, filters, p)
			return err
		})
		if err != nil {
			return nil, false, err
		}
	}
	list = make([]Listed[S], len(rows))
	for i, row := range rows {
		list[i] = Listed[S]{ID: row.ID, Loaded: loaded[S](row)}
	}
	return list, more, nil
}

// Load reads many aggregates by id in one statement, for a transport's data loader: from the
// read model, and an aggregate the read model has not reached yet (just created) replayed from
// its stream where the read model was read, so that a reference is never missing. One that
// does not exist is the zero Loaded.
func Load[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], ids []string) (map[string]command.Loaded[S], error) {
	m, listed := readmodel.Of(def)
	found := make(map[string]command.Loaded[S], len(ids))
	err := s.Read(ctx, func(sd Side) error {
		clear(found)
		if listed {
			rows, err := sd.Reader.ByID(ctx, m, ids)
			if err != nil {
				return err
			}
			for id, row := range rows {
				found[id] = loaded[S](row)
			}
		}
		for _, id := range ids {
			if _, ok := found[id]; !ok {
				l, err := command.For(sd.Commands, def).Load(ctx, id)
				if err != nil {
					return err
				}
				found[id] = l
			}
		}
		return nil
	})
	return found, err
}

// Change is a field an event changed, with its JSON before and after (nil when the state
// before, or after, has no such field).
type Change struct {
	Field         string
	Before, After json.RawMessage
}

// Entry is one entry of an aggregate's history: the event, the aggregate right after it, and
// the fields it changed.
type Entry[S any] struct {
	Event   eventstore.RecordedEvent
	After   command.Loaded[S]
	Changes []Change
}

// History is every event of an aggregate, in version order, with the state after it and the
// fields it changed (the declaration's Fields compared one by one).
func History[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], id string) ([]Entry[S], error) {
	var agg command.Aggregate[S, E, C]
	steps, err := readSteps(ctx, s, func(sd Side) ([]command.Step[S], error) {
		agg = command.For(sd.Commands, def)
		return agg.History(ctx, id)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Entry[S], len(steps))
	entries(steps, agg.Fields, func(i int, e Entry[S], _ []domain.Field) { out[i] = e })
	return out, nil
}

// readSteps reads an aggregate's whole history with history, where reads go.
func readSteps[S any](ctx context.Context, s *Service, history func(Side) ([]command.Step[S], error)) (steps []command.Step[S], err error) {
	err = s.Read(ctx, func(sd Side) (err error) {
		steps, err = history(sd)
		return err
	})
	return steps, err
}

// entries walks steps in order, giving each entry (the state after the event, the fields it
// changed) and the fields after it to visit.
func entries[S any](steps []command.Step[S], fields func(command.Loaded[S]) []domain.Field, visit func(int, Entry[S], []domain.Field)) {
	var prev []domain.Field
	for i, st := range steps {
		next := command.Loaded[S]{State: st.State, Version: st.Event.Version}
		after := fields(next)
		visit(i, Entry[S]{Event: st.Event, After: next, Changes: Changes(prev, after)}, after)
		prev = after
	}
}

// Changes lists the fields whose values differ between two states, in the order the aggregate
// lists its fields (a field only the state before has comes after those of the state after).
func Changes(before, after []domain.Field) []Change {
	values := func(fields []domain.Field) map[string]json.RawMessage {
		m := make(map[string]json.RawMessage, len(fields))
		for _, f := range fields {
			m[f.Name], _ = json.Marshal(f.Value)
		}
		return m
	}
	b, a := values(before), values(after)
	out := []Change{}
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
		ch := Change{Field: f.Name}
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

// jsonOrNull is v, or null for a field a state does not have.
func jsonOrNull(v json.RawMessage) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	return v
}

// Execute runs a command on an aggregate (on the primary, always), or plans it without writing
// when dryRun is true. The id of an existing aggregate is checked first.
func Execute[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], dryRun bool, call command.Call[S, C]) (command.Result[S], error) {
	if !call.New {
		id, err := command.ParseID("id", call.ID)
		if err != nil {
			return command.Result[S]{}, err
		}
		call.ID = id
	}
	h := s.Commands
	if dryRun {
		h = h.DryRun()
	}
	return command.For(h, def).Execute(ctx, call)
}

// Follow follows an aggregate live, on the primary: first gets its state now (before anything
// else is sent), then next its state after each of its events, until next returns false, ctx
// ends, or the stream is deleted (its tombstone ends the follow). It replays the stream, then
// follows the log from the position of its last event. Events of a type the aggregate does not
// know change nothing and send nothing. done is called once, when the follow has ended, with
// why (nil for an ordinary end); an error returned means it never started and done is not
// called.
func Follow[S any, E domain.Event, C any](ctx context.Context, s *Service, def domain.Aggregate[S, E, C], id string,
	first func(command.Loaded[S]), next func(l command.Loaded[S], stop <-chan struct{}) bool, done func(error)) error {
	id, err := command.ParseID("id", id)
	if err != nil {
		return err
	}
	agg := command.For(s.Commands, def)
	l, at, err := agg.At(ctx, id)
	if err != nil {
		return err
	}
	if !l.Exists() {
		return fmt.Errorf("%s %s: %w", strings.ToLower(def.Name), id, domain.ErrNotFound)
	}
	first(l)
	return s.Hub.Follow(ctx, &at, hub.Filter{StreamID: def.Stream(id)}, func(e eventstore.RecordedEvent, stop <-chan struct{}) bool {
		switch {
		case e.Type == eventstore.StreamDeletedType:
			return false // the stream was deleted: the follow ends
		case e.Version <= l.Version:
			// Folded already: a truncated stream whose visible events are all in the
			// snapshot it loaded from has no last event to follow from.
			return true
		}
		after, known, err := agg.Apply(l, e)
		if err != nil {
			s.logger().ErrorContext(ctx, strings.ToLower(def.Name)+" follow: undecodable event", "stream_id", e.StreamID, "version", e.Version, "err", err)
			return false
		}
		l = after
		return !known || next(l, stop)
	}, done)
}
