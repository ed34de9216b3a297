package eventstore

import (
	"context"
	"fmt"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// A Store may read from a hot standby (a streaming replica) of the database another Store
// writes. Its reads stay correct there: a standby's snapshots are built from the primary's WAL,
// where every transaction id the primary assigns is known as running from its first record (or
// from a running-xacts record) until its commit or abort record, and an id below one already
// seen is counted as running until the standby learns otherwise. So a snapshot's xmin on a
// standby, as on the primary, is below every transaction that can still commit, and ReadAll
// there returns a prefix of the global order: older than the primary's, never with a gap.

// Covers reports whether this store's reads see every event before pos, and will from now on:
// on a standby that has not replayed that far yet it is false, and a read bounded by pos (a
// replay as of a time) must go to the primary to be complete.
func (s *Store) Covers(ctx context.Context, pos Position) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, pgsql.EventstoreCovers, pos.tx, pos.seq).Scan(&ok); err != nil {
		return false, fmt.Errorf("covers %s: %w", pos, err)
	}
	return ok, nil
}
