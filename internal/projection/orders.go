package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/eventstore"
)

// Orders is the orders read model: one row per order, as the Order aggregate's Apply leaves it.
type Orders struct{}

// Name implements Projector.
func (Orders) Name() string { return "orders" }

// Category implements Projector.
func (Orders) Category() string { return order.Category }

// Apply implements Projector on the orders table (or a rebuild's copy of it).
func (Orders) Apply(ctx context.Context, tx pgx.Tx, table string, e eventstore.RecordedEvent) error {
	return projectOrder(ctx, sqlOrders{tx: tx, table: pgx.Identifier{table}.Sanitize()}, e)
}

// orderRows is where the orders read model keeps its rows, as userRows.
type orderRows interface {
	get(ctx context.Context, id string) (order.State, error) // the zero State when absent
	put(ctx context.Context, s order.State, e eventstore.RecordedEvent) error
	// remove drops the row of a deleted stream (its tombstone, eventstore.StreamDeletedType).
	remove(ctx context.Context, id string) error
	// snapshot is the aggregate's snapshot at version v, if there is one: where a stream whose
	// earlier events were scavenged (a truncated stream) starts.
	snapshot(ctx context.Context, streamID string, v int64) (order.State, bool, error)
}

// projectOrder applies e to its order's row, as projectUser does.
func projectOrder(ctx context.Context, rows orderRows, e eventstore.RecordedEvent) error {
	id, err := aggregateID(e.StreamID, order.Category)
	if err != nil {
		return err
	}
	if e.Type == eventstore.StreamDeletedType {
		// The stream was deleted: its row goes, as it would from a rebuild after a scavenge.
		return rows.remove(ctx, id)
	}
	ev, ok, err := decodeEvent(e, order.Decode)
	if !ok {
		return err
	}
	s, err := rows.get(ctx, id)
	if err != nil {
		return err
	}
	if s.Version == 0 && e.Version > 1 {
		if s, err = fromSnapshot(ctx, rows.snapshot, e); err != nil {
			return err
		}
	}
	if err := inOrder(s.Version, e); err != nil {
		return err
	}
	s = s.Apply(ev)
	s.ID = id
	s.Version = e.Version // the stream's version, also after a skipped event
	if s.CustomerID == "" {
		return fmt.Errorf("%w: order %s has no OrderCreated event first", ErrSkip, id)
	}
	return rows.put(ctx, s, e)
}

type sqlOrders struct {
	tx    pgx.Tx
	table string // quoted
}

func (r sqlOrders) snapshot(ctx context.Context, streamID string, v int64) (order.State, bool, error) {
	return sqlSnapshot[order.State](ctx, r.tx, streamID, v, order.StateShape)
}

func (r sqlOrders) remove(ctx context.Context, id string) error {
	_, err := r.tx.Exec(ctx, `DELETE FROM `+r.table+` WHERE id = $1`, id)
	return err
}

func (r sqlOrders) get(ctx context.Context, id string) (order.State, error) {
	var (
		s      order.State
		status string
		items  []byte
		total  int64
	)
	err := r.tx.QueryRow(ctx, `SELECT id::text, customer_id::text, status, items, total, carrier, tracking_number, cancel_reason, version FROM `+r.table+` WHERE id = $1`, id).
		Scan(&s.ID, &s.CustomerID, &status, &items, &total, &s.Carrier, &s.TrackingNumber, &s.CancelReason, &s.Version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return order.State{}, nil
	case err != nil:
		return s, err
	}
	s.Status, s.Total = order.Status(status), domain.Money(total)
	if err := json.Unmarshal(items, &s.Items); err != nil {
		return s, fmt.Errorf("read items of order %s: %w", id, err)
	}
	return s, nil
}

func (r sqlOrders) put(ctx context.Context, s order.State, e eventstore.RecordedEvent) error {
	items, err := json.Marshal(s.Items)
	if err != nil {
		return err
	}
	// As a string: in pgx's exec mode (a pooler in transaction mode) a []byte goes as bytea.
	_, err = r.tx.Exec(ctx, `INSERT INTO `+r.table+` AS o (id, customer_id, status, items, total, carrier, tracking_number, cancel_reason, version, position, created_at, updated_at, applied)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1)
ON CONFLICT (id) DO UPDATE SET status = $3, items = $4, total = $5, carrier = $6, tracking_number = $7,
	cancel_reason = $8, version = $9, position = $10, updated_at = $11, applied = o.applied + 1`,
		s.ID, s.CustomerID, string(s.Status), string(items), int64(s.Total), s.Carrier, s.TrackingNumber, s.CancelReason, s.Version, e.Position.String(), e.RecordedAt)
	return err
}
