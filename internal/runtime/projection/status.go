package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// Statuses of a projection.
const (
	StatusLive       = "LIVE"        // it has applied every event readers can see
	StatusCatchingUp = "CATCHING_UP" // events wait for it
	StatusRebuilding = "REBUILDING"  // a rebuild is filling a fresh copy; the live table serves
)

// LagCap bounds the count of events a status reports as lag; a larger lag shows as LagCap.
const LagCap = 1_000_000

// Info is a projection's state.
type Info struct {
	Name      string
	Position  string // the checkpoint: the last position applied, "" before the first event
	Lag       int64  // events of its category readers can see that it has not applied, at most LagCap
	Skipped   int64  // events it could not use
	Status    string
	UpdatedAt time.Time
}

// Status returns every projection's state, in the order the runner was given them.
func (r *Runner) Status(ctx context.Context) ([]Info, error) {
	out := make([]Info, 0, len(r.projectors))
	for _, p := range r.projectors {
		info := Info{Name: p.Name()}
		var rebuilding bool
		err := r.pool.QueryRow(ctx, pgsql.CheckpointsStatus, p.Name()).Scan(&info.Position, &info.Skipped, &info.UpdatedAt, &rebuilding)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", p.Name(), err)
		}
		at, err := eventstore.ParsePosition(info.Position)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", p.Name(), err)
		}
		if info.Lag, err = r.store.CountAfter(ctx, at, p.Category(), LagCap); err != nil {
			return nil, fmt.Errorf("status of %s: %w", p.Name(), err)
		}
		switch {
		case rebuilding:
			info.Status = StatusRebuilding
		case info.Lag > 0:
			info.Status = StatusCatchingUp
		default:
			info.Status = StatusLive
		}
		out = append(out, info)
	}
	return out, nil
}

// Applied returns the position every read model that reads category has applied up to: the
// oldest checkpoint of the projectors of that category, and of those whose category is not known
// (a rebuild's copy, a projector that has not started since the column came), in the database:
// also of servers running other projectors. The scavenger deletes no event of the category after
// it, so no projector misses an event it has not applied yet. It is the zero position while any
// of them has applied nothing, or when there is no checkpoint at all; eventstore.Unbounded()
// when no projector reads the category.
func Applied(ctx context.Context, pool *pgxpool.Pool, category string) (eventstore.Position, error) {
	var some bool
	var oldest *string
	if err := pool.QueryRow(ctx, pgsql.CheckpointsApplied, category).Scan(&some, &oldest); err != nil {
		return eventstore.Position{}, fmt.Errorf("read checkpoints: %w", err)
	}
	switch {
	case !some:
		return eventstore.Position{}, nil
	case oldest == nil:
		return eventstore.Unbounded(), nil
	}
	if *oldest == "" {
		return eventstore.Position{}, nil
	}
	pos, err := eventstore.ParsePosition(*oldest)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("read checkpoints: %w", err)
	}
	return pos, nil
}
