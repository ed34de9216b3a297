package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Snapshot is a stream's folded state at a version, as the aggregate that wrote it encoded it.
// The store keeps snapshots for the aggregate layer and knows nothing of what they hold.
type Snapshot struct {
	StreamID string
	Version  int64
	Shape    int // the version of the state's shape
	State    json.RawMessage
	// Subject, when set, is the subject whose personal data State holds in the clear: the
	// snapshot is not saved once the subject is forgotten, nor while Forget runs, so that none
	// outlives forgetting (Forget deletes the ones saved before).
	Subject string
}

// SaveSnapshot stores s, replacing a snapshot at the same version, and deletes the stream's
// snapshots of other shapes. It is its own statement, never part of an append.
func (s *Store) SaveSnapshot(ctx context.Context, snap Snapshot) error {
	save := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}) error {
		_, err := q.Exec(ctx, pgsql.EventstoreSaveSnapshot, snap.StreamID, snap.Version, snap.Shape, snap.State)
		return err
	}
	var err error
	if snap.Subject == "" {
		err = save(s.pool)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// Shared with other savers, exclusive with Forget: a snapshot committed before
			// Forget takes the lock is deleted by it; one that waits for it sees the tombstone.
			if _, err := tx.Exec(ctx, pgsql.EventstoreLockSubjectShared, snap.Subject); err != nil {
				return err
			}
			var forgotten bool
			if err := tx.QueryRow(ctx, pgsql.EventstoreForgotten, snap.Subject).Scan(&forgotten); err != nil || forgotten {
				return err
			}
			return save(tx)
		})
	}
	if err != nil {
		return fmt.Errorf("save snapshot of %s at %d: %w", snap.StreamID, snap.Version, err)
	}
	return nil
}

// LatestSnapshot returns the stream's newest snapshot of shape at or before version maxVersion
// (0: any version); ok is false when there is none.
func (s *Store) LatestSnapshot(ctx context.Context, streamID string, shape int, maxVersion int64) (snap Snapshot, ok bool, err error) {
	if maxVersion <= 0 {
		maxVersion = 1<<63 - 1
	}
	snap.StreamID, snap.Shape = streamID, shape
	err = s.pool.QueryRow(ctx, pgsql.EventstoreLatestSnapshot, streamID, shape, maxVersion).Scan(&snap.Version, &snap.State)
	if errors.Is(err, pgx.ErrNoRows) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("read snapshot of %s: %w", streamID, err)
	}
	return snap, true, nil
}

// StreamVersionBefore returns the version of the stream's last event before position before (0
// when it has none): an aggregate's version in the log as of a time (AsOf).
func (s *Store) StreamVersionBefore(ctx context.Context, streamID string, before Position) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, pgsql.EventstoreStreamVersionBefore, streamID, before.tx, before.seq).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("version of %s: %w", streamID, err)
	}
	return v, nil
}
