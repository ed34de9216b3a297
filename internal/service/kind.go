package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// The registered aggregates known only by their category: what a generic client (the Explorer)
// reads of any of them, today's and tomorrow's alike, with their states as their declarations'
// Fields.

// Kind is the registered aggregate of category; an unknown category is the client's error,
// naming the registered ones.
func (s *Service) Kind(category string) (domain.Kind, error) {
	var names []string
	for i, d := range s.describe() {
		if d.Category == category {
			return s.Aggregates()[i], nil
		}
		names = append(names, d.Category)
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
	l, ok, err = replayedAt(ctx, s, u, func(sd Side) (command.Loaded[any], error) {
		agg = command.ForKind(sd.Commands, k)
		return agg.Until(ctx, id, u)
	})
	if err != nil || !ok || !agg.Exists(l) {
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
	var agg command.Kind
	steps, err := readSteps(ctx, s, func(sd Side) ([]command.Step[any], error) {
		agg = command.ForKind(sd.Commands, k)
		return agg.History(ctx, id)
	})
	if err != nil {
		return nil, err
	}
	out := make([]KindEntry, len(steps))
	entries(steps, agg.Fields, func(i int, e Entry[any], fields []domain.Field) { out[i] = KindEntry{Entry: e, Fields: fields} })
	return out, nil
}
