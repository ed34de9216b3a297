package eventstore

import (
	"context"
	"fmt"
)

// A Store may read from a hot standby (a streaming replica) of the database another Store
// writes. Its reads stay correct there: a standby's snapshots are built from the primary's WAL,
// where every transaction id the primary assigns is known as running from its first record (or
// from a running-xacts record) until its commit or abort record, and an id below one already
// seen is counted as running until the standby learns otherwise. So a snapshot's xmin on a
// standby, as on the primary, is below every transaction that can still commit, and ReadAll
// there returns a prefix of the global order: older than the primary's, never with a gap.

// coversSQL says whether every event before position ($1, $2) is visible to reads from now on:
// every transaction up to $1 (or before it, when $2 is 0: a position before all of $1's events)
// has ended in this server's view.
const coversSQL = `SELECT CASE WHEN $2::bigint = 0
	THEN pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8
	ELSE pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 END`

// Covers reports whether this store's reads see every event before pos, and will from now on:
// on a standby that has not replayed that far yet it is false, and a read bounded by pos (a
// replay as of a time) must go to the primary to be complete.
func (s *Store) Covers(ctx context.Context, pos Position) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, coversSQL, pos.tx, pos.seq).Scan(&ok); err != nil {
		return false, fmt.Errorf("covers %s: %w", pos, err)
	}
	return ok, nil
}
