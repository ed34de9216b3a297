package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
)

// Users is the users read model: one row per user, as the User aggregate's Apply leaves it.
type Users struct{}

// Name implements Projector.
func (Users) Name() string { return "users" }

// Category implements Projector.
func (Users) Category() string { return user.Category }

// Apply implements Projector on the users table (or a rebuild's copy of it).
func (Users) Apply(ctx context.Context, tx pgx.Tx, table string, e eventstore.RecordedEvent) error {
	return projectUser(ctx, sqlUsers{tx: tx, table: pgx.Identifier{table}.Sanitize()}, e)
}

// userRows is where the users read model keeps its rows: a table in the projector's
// transaction, or memory for the read model as of a past time (AsOf). projectUser is the one
// projection logic for both.
type userRows interface {
	get(ctx context.Context, id string) (user.State, error) // the zero State when absent
	put(ctx context.Context, s user.State, e eventstore.RecordedEvent) error
	// remove drops the row of a deleted stream (its tombstone, eventstore.StreamDeletedType).
	remove(ctx context.Context, id string) error
	// snapshot is the aggregate's snapshot at version v, if there is one: where a stream whose
	// earlier events were scavenged (a truncated stream) starts.
	snapshot(ctx context.Context, streamID string, v int64) (user.State, bool, error)
}

// projectUser applies e to its user's row: the row is read as a state, the domain's Apply gives
// the new state, and the row is written back. The projection has no logic of its own to drift
// from the aggregate's.
func projectUser(ctx context.Context, rows userRows, e eventstore.RecordedEvent) error {
	id, err := aggregateID(e.StreamID, user.Category)
	if err != nil {
		return err
	}
	if e.Type == eventstore.StreamDeletedType {
		// The stream was deleted: its row goes, as it would from a rebuild after a scavenge.
		return rows.remove(ctx, id)
	}
	ev, ok, err := decodeEvent(e, user.Decode)
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
	return rows.put(ctx, s, e)
}

type sqlUsers struct {
	tx    pgx.Tx
	table string // quoted
}

func (r sqlUsers) snapshot(ctx context.Context, streamID string, v int64) (user.State, bool, error) {
	return sqlSnapshot[user.State](ctx, r.tx, streamID, v, user.StateShape)
}

func (r sqlUsers) remove(ctx context.Context, id string) error {
	_, err := r.tx.Exec(ctx, `DELETE FROM `+r.table+` WHERE id = $1`, id)
	return err
}

func (r sqlUsers) get(ctx context.Context, id string) (user.State, error) {
	var s user.State
	var status string
	err := r.tx.QueryRow(ctx, `SELECT id::text, name, email, status, version FROM `+r.table+` WHERE id = $1`, id).Scan(&s.ID, &s.Name, &s.Email, &status, &s.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return user.State{}, nil
	}
	s.Status = user.Status(status)
	return s, err
}

func (r sqlUsers) put(ctx context.Context, s user.State, e eventstore.RecordedEvent) error {
	_, err := r.tx.Exec(ctx, `INSERT INTO `+r.table+` AS u (id, name, email, status, version, position, created_at, updated_at, applied)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)
ON CONFLICT (id) DO UPDATE SET name = $2, email = $3, status = $4, version = $5, position = $6, updated_at = $7, applied = u.applied + 1`,
		s.ID, s.Name, s.Email, string(s.Status), s.Version, e.Position.String(), e.RecordedAt)
	return err
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

// decodeEvent decodes e for a read model of an aggregate with decode. ok is false when there is
// nothing to apply: for a type the domain does not know (ignored, err nil), and for an event the
// read model cannot use (err wraps ErrSkip). The stream's tombstone is the caller's to handle
// first.
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

// fromSnapshot is where a row starts when its first event in the log is not its stream's
// first: the stream was truncated and the events before were scavenged (a rebuild, or a
// projector that was far behind). The truncation left a snapshot just before the stream's
// first visible version; without it the event is skipped rather than make a row of half a
// history.
func fromSnapshot[S any](ctx context.Context, snapshot func(context.Context, string, int64) (S, bool, error), e eventstore.RecordedEvent) (S, error) {
	s, ok, err := snapshot(ctx, e.StreamID, e.Version-1)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("%w: %s starts at version %d in the log (truncated) and has no snapshot at %d", ErrSkip, e.StreamID, e.Version, e.Version-1)
	}
	return s, nil
}

// sqlSnapshot reads an aggregate's snapshot at version v, of the given shape, in tx.
func sqlSnapshot[S any](ctx context.Context, tx pgx.Tx, streamID string, v int64, shape int) (S, bool, error) {
	var s S
	var state []byte
	err := tx.QueryRow(ctx, `SELECT state FROM snapshots WHERE stream_id = $1 AND version = $2 AND shape = $3`, streamID, v, shape).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal(state, &s); err != nil {
		return s, false, nil //nolint:nilerr // an unreadable snapshot is no snapshot
	}
	return s, true, nil
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
