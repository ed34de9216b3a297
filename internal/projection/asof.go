package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
)

// ErrTooManyEvents is returned by the read models as of a time when answering would replay more
// events than allowed.
var ErrTooManyEvents = errors.New("too many events to replay")

// memUsers and memOrders keep a read model in memory: the same projection logic as the tables.
type (
	memUsers  map[string]user.State
	memOrders map[string]order.State
)

func (m memUsers) get(_ context.Context, id string) (user.State, error) { return m[id], nil }
func (m memUsers) put(_ context.Context, s user.State, _ eventstore.RecordedEvent) error {
	m[s.ID] = s
	return nil
}

// The read models as of a time replay the log as it is: a stream whose earlier events were
// scavenged has no snapshot to start from there, and is skipped.
func (memUsers) snapshot(context.Context, string, int64) (user.State, bool, error) {
	return user.State{}, false, nil
}

func (memOrders) snapshot(context.Context, string, int64) (order.State, bool, error) {
	return order.State{}, false, nil
}

func (m memUsers) remove(_ context.Context, id string) error {
	delete(m, id)
	return nil
}

func (m memOrders) remove(_ context.Context, id string) error {
	delete(m, id)
	return nil
}

func (m memOrders) get(_ context.Context, id string) (order.State, error) { return m[id], nil }
func (m memOrders) put(_ context.Context, s order.State, _ eventstore.RecordedEvent) error {
	m[s.ID] = s
	return nil
}

// replayUntil feeds apply every event of category before the position before, in the global
// order, refusing to read more than maxEvents of them.
func replayUntil(ctx context.Context, store *eventstore.Store, category string, before eventstore.Position, maxEvents int, apply func(eventstore.RecordedEvent) error) error {
	var after eventstore.Position
	read := 0
	for {
		events, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Max: 1000, Category: category})
		if err != nil {
			return err
		}
		for _, e := range events {
			if e.Position.Compare(before) >= 0 {
				return nil
			}
			if read++; read > maxEvents {
				return fmt.Errorf("%w: the %s read model as of then needs more than %d events (--max-replay-events)", ErrTooManyEvents, category, maxEvents)
			}
			if err := apply(e); err != nil && !errors.Is(err, ErrSkip) {
				return err
			}
			after = e.Position
		}
		if len(events) < 1000 {
			return nil
		}
	}
}

// UsersAsOf builds the users read model from the log before the position before (the log as
// of a time: Store.AsOf), in memory, with the live projection's own logic.
func UsersAsOf(ctx context.Context, store *eventstore.Store, before eventstore.Position, maxEvents int) (map[string]user.State, error) {
	rows := memUsers{}
	err := replayUntil(ctx, store, user.Category, before, maxEvents, func(e eventstore.RecordedEvent) error { return projectUser(ctx, rows, e) })
	return rows, err
}

// OrdersAsOf builds the orders read model as of the position before, as UsersAsOf.
func OrdersAsOf(ctx context.Context, store *eventstore.Store, before eventstore.Position, maxEvents int) (map[string]order.State, error) {
	rows := memOrders{}
	err := replayUntil(ctx, store, order.Category, before, maxEvents, func(e eventstore.RecordedEvent) error { return projectOrder(ctx, rows, e) })
	return rows, err
}
