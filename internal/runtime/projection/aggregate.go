package projection

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/store/readmodel"
)

// Aggregate is the projector of an aggregate's declared read model (domain.ReadModel): one row
// per aggregate, as the aggregate's own Evolve leaves it. The projection has no logic of its own
// to drift from the aggregate's.
type Aggregate struct {
	Model readmodel.Model
}

// For returns the projectors of the read models that kinds declare.
func For(kinds []domain.Kind) []Projector {
	var out []Projector
	for _, m := range readmodel.All(kinds) {
		out = append(out, Aggregate{Model: m})
	}
	return out
}

// Name implements Projector.
func (a Aggregate) Name() string { return a.Model.Name() }

// Check reports a table that does not fit the declaration (readmodel.Model.Check).
func (a Aggregate) Check(ctx context.Context, db readmodel.DB) error { return a.Model.Check(ctx, db) }

// Category implements Projector.
func (a Aggregate) Category() string { return a.Model.Category() }

// Apply implements Projector on the read model's table (or a rebuild's copy of it).
func (a Aggregate) Apply(ctx context.Context, tx pgx.Tx, table string, e eventstore.RecordedEvent) error {
	return project(ctx, a.Model, sqlRows{m: a.Model, tx: tx, table: table}, e)
}

// rows is where a read model keeps its rows: a table in the projector's transaction, or memory
// for the read model as of a past time (AsOf). project is the one projection logic for both.
type rows interface {
	get(ctx context.Context, id string) (readmodel.Row, bool, error)
	put(ctx context.Context, r readmodel.Row, e eventstore.RecordedEvent) error
	// remove drops the row of a deleted stream (its tombstone, eventstore.StreamDeletedType).
	remove(ctx context.Context, id string) error
	// snapshot is the aggregate's snapshot at version v, if there is one: where a stream whose
	// earlier events were scavenged (a truncated stream) starts.
	snapshot(ctx context.Context, streamID string, v int64) (any, bool, error)
}

// project applies e to its aggregate's row: the row is read as a state, the aggregate's Evolve
// gives the new state, and the row is written back.
func project(ctx context.Context, m readmodel.Model, rows rows, e eventstore.RecordedEvent) error {
	id, err := aggregateID(e.StreamID, m.Category())
	if err != nil {
		return err
	}
	if e.Type == eventstore.StreamDeletedType {
		// The stream was deleted: its row goes, as it would from a rebuild after a scavenge.
		return rows.remove(ctx, id)
	}
	if e.UpcastErr != nil {
		return fmt.Errorf("%w: %w", ErrSkip, e.UpcastErr)
	}
	f := m.Fold()
	r, ok, err := rows.get(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		r = readmodel.Row{ID: id, State: f.Zero}
		if e.Version > 1 {
			if r.State, err = fromSnapshot(ctx, rows.snapshot, e); err != nil {
				return err
			}
			r.Version = e.Version - 1
		}
	}
	if err := inOrder(r.Version, e); err != nil {
		return err
	}
	s, known, err := f.Apply(r.State, e.Type, e.Data, e.Version)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrSkip, err)
	case !known:
		return nil // a type the aggregate does not know: ignored
	case !f.Exists(s):
		return fmt.Errorf("%w: %s %s does not exist after this event (its first event is not the one that creates it)", ErrSkip, m.Aggregate(), id)
	}
	return rows.put(ctx, readmodel.Row{ID: id, State: s, Version: e.Version}, e)
}

type sqlRows struct {
	m     readmodel.Model
	tx    pgx.Tx
	table string
}

func (r sqlRows) get(ctx context.Context, id string) (readmodel.Row, bool, error) {
	return r.m.Get(ctx, r.tx, r.table, id)
}

func (r sqlRows) put(ctx context.Context, row readmodel.Row, e eventstore.RecordedEvent) error {
	return r.m.Put(ctx, r.tx, r.table, row, e.Position, e.RecordedAt)
}

func (r sqlRows) remove(ctx context.Context, id string) error {
	return r.m.Remove(ctx, r.tx, r.table, id)
}

// snapshot reads the aggregate's snapshot at version v, of its current shape.
func (r sqlRows) snapshot(ctx context.Context, streamID string, v int64) (any, bool, error) {
	var state []byte
	err := r.tx.QueryRow(ctx, pgsql.ProjectionSnapshot, streamID, v, r.m.Shape()).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s, err := r.m.Fold().Unmarshal(state)
	if err != nil {
		return nil, false, nil //nolint:nilerr // an unreadable snapshot is no snapshot
	}
	return s, true, nil
}

// aggregateID takes the aggregate id out of a stream id "<category>-<uuid>". Streams of the
// category that are not an aggregate's (written with appendEvents) are skipped.
func aggregateID(streamID, category string) (string, error) {
	id, ok := strings.CutPrefix(streamID, category+"-")
	if u, err := uuid.Parse(id); !ok || err != nil || u.String() != id {
		return "", fmt.Errorf("%w: stream %s is not a %s aggregate's", ErrSkip, streamID, category)
	}
	return id, nil
}

// fromSnapshot is where a row starts when its first event in the log is not its stream's
// first: the stream was truncated and the events before were scavenged (a rebuild, or a
// projector that was far behind). The truncation left a snapshot just before the stream's
// first visible version; without it the event is skipped rather than make a row of half a
// history.
func fromSnapshot(ctx context.Context, snapshot func(context.Context, string, int64) (any, bool, error), e eventstore.RecordedEvent) (any, error) {
	s, ok, err := snapshot(ctx, e.StreamID, e.Version-1)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s starts at version %d in the log (truncated) and has no snapshot at %d", ErrSkip, e.StreamID, e.Version, e.Version-1)
	}
	return s, nil
}

// memRows keeps a read model in memory, for AsOf.
type memRows readmodel.Memory

func (m memRows) get(_ context.Context, id string) (readmodel.Row, bool, error) {
	r, ok := m[id]
	return r, ok, nil
}

func (m memRows) put(_ context.Context, r readmodel.Row, _ eventstore.RecordedEvent) error {
	m[r.ID] = r
	return nil
}

func (m memRows) remove(_ context.Context, id string) error {
	delete(m, id)
	return nil
}

// The read models as of a time replay the log as it is: a stream whose earlier events were
// scavenged has no snapshot to start from there, and is skipped.
func (memRows) snapshot(context.Context, string, int64) (any, bool, error) { return nil, false, nil }

// ErrTooManyEvents is returned by the read models as of a time when answering would replay more
// events than allowed.
var ErrTooManyEvents = errors.New("too many events to replay")

// AsOf builds m from the log before the position before (the log as of a time: Store.AsOf), in
// memory, with the live projection's own logic. It refuses to replay more than maxEvents.
func AsOf(ctx context.Context, store *eventstore.Store, m readmodel.Model, before eventstore.Position, maxEvents int) (readmodel.Memory, error) {
	rows := memRows{}
	var after eventstore.Position
	read := 0
	for {
		events, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Max: 1000, Category: m.Category()})
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if e.Position.Compare(before) >= 0 {
				return readmodel.Memory(rows), nil
			}
			if read++; read > maxEvents {
				return nil, fmt.Errorf("%w: the %s read model as of then needs more than %d events (--max-replay-events)", ErrTooManyEvents, m.Name(), maxEvents)
			}
			if err := project(ctx, m, rows, e); err != nil && !errors.Is(err, ErrSkip) {
				return nil, err
			}
			after = e.Position
		}
		if len(events) < 1000 {
			return readmodel.Memory(rows), nil
		}
	}
}
