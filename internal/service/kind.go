package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/eventstore"
)

// The registered aggregates known only by their category: what a generic client (the Explorer)
// reads of any of them, today's and tomorrow's alike, with their states as their declarations'
// Fields.

// Kind is the registered aggregate of category; an unknown category is the client's error,
// naming the registered ones.
func (s *Service) Kind(category string) (domain.Kind, error) {
	var names []string
	for _, k := range s.Aggregates() {
		c := k.Describe().Category
		if c == category {
			return k, nil
		}
		names = append(names, c)
	}
	return nil, &eventstore.ValidationError{Field: "category", Reason: fmt.Sprintf("%.64q is not the category of a registered aggregate (%s)", category, strings.Join(names, ", "))}
}

// KindAt is an aggregate of kind k now (u zero), or at a version or a time, with its fields; ok
// is false when it does not exist (then), or has no such version.
func KindAt(ctx context.Context, s *Service, k domain.Kind, id string, u command.Until) (l command.Loaded[any], fields []domain.Field, ok bool, err error) {
	if id, err = command.ParseID("id", id); err != nil {
		return l, nil, false, err
	}
	var agg command.Kind
	err = s.ReadBefore(ctx, u.Before, func(sd Side) (err error) {
		agg = command.ForKind(sd.Commands, k)
		l, err = agg.Until(ctx, id, u)
		if err == nil && sd.Replica && u.Version > l.Version {
			return ErrBehind // or the version does not exist: the primary says which
		}
		return err
	})
	if err != nil || !agg.Exists(l) || u.Version > l.Version {
		return l, nil, false, err
	}
	return l, agg.Fields(l), true, nil
}

// KindEntry is an entry of the history of an aggregate known by its kind: History's Entry, with
// the state after the event as its fields.
type KindEntry struct {
	Entry[any]
	Fields []domain.Field
}

// KindHistory is every event of an aggregate of kind k, with its fields after each and the
// fields each changed.
func KindHistory(ctx context.Context, s *Service, k domain.Kind, id string) ([]KindEntry, error) {
	var (
		steps []command.Step[any]
		agg   command.Kind
	)
	err := s.Read(ctx, func(sd Side) (err error) {
		agg = command.ForKind(sd.Commands, k)
		steps, err = agg.History(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]KindEntry, len(steps))
	var prev []domain.Field
	for i, st := range steps {
		next := command.Loaded[any]{State: st.State, Version: st.Event.Version}
		fields := agg.Fields(next)
		out[i] = KindEntry{Entry: Entry[any]{Event: st.Event, After: next, Changes: Changes(prev, fields)}, Fields: fields}
		prev = fields
	}
	return out, nil
}
