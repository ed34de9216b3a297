package eventstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Holder is a transaction that holds back the global order: until it ends, ReadAll returns no
// event appended by a younger transaction, in any database of the PostgreSQL cluster.
type Holder struct {
	PID      int    // server process id; 0 for a prepared transaction
	Database string // database of the session
	User     string
	State    string    // pg_stat_activity state, e.g. "idle in transaction"; "prepared" for 2PC
	Since    time.Time // when the transaction began (prepared: when it was prepared)
	GID      string    // a prepared transaction's global id
}

// HeldBackBy lists up to limit transactions that hold back the global order, oldest first. Short
// ones come and go with every append; one that stays at the top is what an operator looks for
// when events are slow to reach readers. Sessions of other users show only when the database
// role may see them (pg_read_all_stats).
func (s *Store) HeldBackBy(ctx context.Context, limit int) ([]Holder, error) {
	rows, err := s.pool.Query(ctx, pgsql.EventstoreHeldBackBy, limit)
	if err != nil {
		return nil, fmt.Errorf("held back by: %w", err)
	}
	holders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Holder, error) {
		var h Holder
		var age int64
		err := r.Scan(&h.PID, &h.Database, &h.User, &h.State, &h.Since, &h.GID, &age)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("held back by: %w", err)
	}
	return holders, nil
}

// Horizon returns a position that every event visible to ReadAll from now on is after, or at:
// every event of a transaction older than the oldest one running now. A reader of a category
// that found fewer events than it asked for, in a read that started after Horizon returned,
// has seen every event of that category up to the horizon, and may resume from
// max(its last event, the horizon). Projectors use it to move their checkpoint past events of
// other categories.
func (s *Store) Horizon(ctx context.Context) (Position, error) {
	var xmin uint64
	if err := s.pool.QueryRow(ctx, pgsql.EventstoreSnapshotXmin).Scan(&xmin); err != nil {
		return Position{}, fmt.Errorf("read horizon: %w", err)
	}
	return HorizonOf(xmin), nil
}

// HorizonOf is the horizon (Horizon) for a snapshot whose xmin is xmin, for a reader that reads
// pg_snapshot_xmin(pg_current_snapshot()) together with something else in one statement.
func HorizonOf(xmin uint64) Position { return Position{tx: xmin - 1, seq: math.MaxInt64} }

// WaitReadable waits, up to within, until ReadAll shows every event up to and including pos, and
// reports whether it does. A transaction anywhere on the server older than pos's holds that back
// until it ends (HeldBackBy names it).
func (s *Store) WaitReadable(ctx context.Context, pos Position, within time.Duration) (bool, error) {
	deadline := time.Now().Add(within)
	for {
		horizon, err := s.Horizon(ctx)
		if err != nil {
			return false, err
		}
		if pos.Compare(horizon) <= 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Now returns a position that every event of a transaction that has committed by now is at or
// before (with events of transactions still running, which may commit later). WaitReadable(Now)
// is how a reader makes sure it will see everything written before it started.
func (s *Store) Now(ctx context.Context) (Position, error) {
	var xmax uint64
	if err := s.pool.QueryRow(ctx, pgsql.EventstoreSnapshotXmax).Scan(&xmax); err != nil {
		return Position{}, fmt.Errorf("read the current position: %w", err)
	}
	return Position{tx: xmax - 1, seq: math.MaxInt64}, nil
}

// Querier runs a query: a pool, a connection or a transaction, on the primary or a replica.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Quiet reports whether db shows every event up to and including pos, and none of category
// after after up to pos: a read model of that category that has applied everything up to after
// is then as it would be at pos, though its checkpoint has not moved there.
func Quiet(ctx context.Context, db Querier, category string, after, pos Position) (bool, error) {
	var quiet bool
	if err := db.QueryRow(ctx, pgsql.EventstoreQuiet, after.tx, after.seq, pos.tx, pos.seq, category).Scan(&quiet); err != nil {
		return false, fmt.Errorf("read what follows %s in %s: %w", after, category, err)
	}
	return quiet, nil
}
