package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// OrderStats is the order statistics read model: one row per order with the times it was
// created, paid (and the amount), shipped and cancelled, each the recorded_at of the event that
// did it. The figures per day (query.Reader.OrderStats) are sums over these rows, and the median
// time to ship needs each order's two times, which a table of daily sums could not give for an
// arbitrary range of days.
//
// Unlike Orders, its rows are not an aggregate's state: Apply maps each event to the column it
// sets, and keeps the row's version to apply every event once and in order.
type OrderStats struct{}

// Name implements Projector.
func (OrderStats) Name() string { return "order_stats" }

// Category implements Projector.
func (OrderStats) Category() string { return order.Category }

// Apply implements Projector on the order_stats table (or a rebuild's copy of it).
func (OrderStats) Apply(ctx context.Context, tx pgx.Tx, table string, e eventstore.RecordedEvent) error {
	id, err := aggregateID(e.StreamID, order.Category)
	if err != nil {
		return err
	}
	if e.Type == eventstore.StreamDeletedType {
		// A deleted order leaves the statistics, as it would leave them in a rebuild once the
		// scavenger has deleted its events.
		_, err := tx.Exec(ctx, pgsql.ProjectionOrderStatsDelete(table), id)
		return err
	}
	ev, ok, err := decodeEvent(e, order.Decode)
	if !ok {
		return err
	}
	var version int64
	err = tx.QueryRow(ctx, pgsql.ProjectionOrderStatsVersion(table), id).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, created := ev.(order.Created); !created {
			if e.Version > 1 {
				// The stream was truncated and its first events scavenged: without its creation
				// time the order cannot be counted, and is left out (as nothing is wrong, this
				// is not a skipped event).
				return nil
			}
			return fmt.Errorf("%w: order %s has no OrderCreated event first", ErrSkip, id)
		}
	case err != nil:
		return err
	default:
		if err := inOrder(version, e); err != nil {
			return err
		}
	}
	pos, at := e.Position.String(), e.RecordedAt
	switch ev := ev.(type) {
	case order.Created:
		if version > 0 {
			return fmt.Errorf("%w: order %s is created a second time", ErrSkip, id)
		}
		_, err = tx.Exec(ctx, pgsql.ProjectionOrderStatsCreated(table), id, at, e.Version, pos)
	case order.PaidEvent:
		_, err = tx.Exec(ctx, pgsql.ProjectionOrderStatsPaid(table), id, at, int64(ev.Amount), e.Version, pos)
	case order.ShippedEvent:
		_, err = tx.Exec(ctx, pgsql.ProjectionOrderStatsShipped(table), id, at, e.Version, pos)
	case order.CancelledEvent:
		_, err = tx.Exec(ctx, pgsql.ProjectionOrderStatsCancelled(table), id, at, e.Version, pos)
	default:
		_, err = tx.Exec(ctx, pgsql.ProjectionOrderStatsMoved(table), id, e.Version, pos)
	}
	return err
}

// decodeEvent decodes e with decode. ok is false when there is nothing to apply: for a type the
// domain does not know (ignored, err nil), and for an event the read model cannot use (err wraps
// ErrSkip). The stream's tombstone is the caller's to handle first.
func decodeEvent[E any](e eventstore.RecordedEvent, decode func(string, []byte) (E, error)) (ev E, ok bool, err error) {
	if e.UpcastErr != nil {
		return ev, false, fmt.Errorf("%w: %w", ErrSkip, e.UpcastErr)
	}
	ev, err = decode(e.Type, e.Data)
	if errors.Is(err, domain.ErrUnknownEvent) {
		return ev, false, nil // a type this projection does not handle: ignored
	}
	if err != nil {
		return ev, false, fmt.Errorf("%w: %w", ErrSkip, err)
	}
	return ev, true, nil
}

// inOrder checks that e comes after the version a row is at: anything else would mean an event
// applied twice, which the checkpoint rules out; it stops the projector rather than let the read
// model drift. (A later version than the next one follows an event that was skipped.)
func inOrder(rowVersion int64, e eventstore.RecordedEvent) error {
	if e.Version <= rowVersion {
		return fmt.Errorf("read model is at version %d of %s, event is version %d", rowVersion, e.StreamID, e.Version)
	}
	return nil
}
