package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// settleRebuild bounds how long a rebuild waits for the transactions running when it starts.
const settleRebuild = 5 * time.Second

// ErrRebuildRunning is returned by Rebuild when the projection is being rebuilt already.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// Progress reports a rebuild's progress: events applied so far and the position reached.
type Progress func(applied int64, position string)

// behindLive reports whether the checkpoint copy is before the live checkpoint name.
func (r *Runner) behindLive(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name, copy string) (bool, error) {
	var live, rebuilt string
	err := q.QueryRow(ctx, pgsql.ProjectionLiveAndCopyCheckpoints, name, copy).Scan(&live, &rebuilt)
	return rebuilt < live, err
}

// session is a connection that keeps its session (a rebuild's lock lives in it) until release:
// a dedicated one from Options.Connect when set (a pool may sit behind a pooler in transaction
// mode, which shares sessions between clients), else one of the pool's.
func (r *Runner) session(ctx context.Context) (sessionConn, func(), error) {
	if r.opts.Connect == nil {
		conn, err := r.pool.Acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		return conn, conn.Release, nil
	}
	conn, err := r.opts.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return conn, func() { _ = conn.Close(context.WithoutCancel(ctx)) }, nil
}

// sessionConn is what a rebuild does on its session: *pgxpool.Conn or *pgx.Conn.
type sessionConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Rebuild rebuilds projection name from the first event into a fresh copy of its table while
// the live table keeps serving (and its projector keeps following the log), then swaps the copy
// in, together with its checkpoint, in one transaction. Queries see the old table until that
// commit and the new one after it.
func (r *Runner) Rebuild(ctx context.Context, name string, progress Progress) error {
	p, err := r.Projector(name)
	if err != nil {
		return err
	}
	conn, release, err := r.session(ctx)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	defer release()
	var locked bool
	if err := conn.QueryRow(ctx, pgsql.ProjectionTryRebuildLock, name).Scan(&locked); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	if !locked {
		return fmt.Errorf("rebuild %s: %w", name, ErrRebuildRunning)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), pgsql.ProjectionRebuildUnlock, name) }()

	copyName := name + "_rebuild"
	checkpoint := name + ".rebuild"
	// A rebuild that died left its copy behind; this one starts over.
	if _, err := conn.Exec(ctx, pgsql.ProjectionDropCopy(copyName)); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, pgsql.ProjectionCreateCopy(copyName, name)); err != nil {
		return fmt.Errorf("rebuild %s: make the copy: %w", name, err)
	}
	if _, err := conn.Exec(ctx, pgsql.ProjectionResetCheckpoint, checkpoint); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	r.logger.InfoContext(ctx, "projection rebuild started", "projection", name)
	started := time.Now()
	// Whatever was written before the rebuild started is in the copy it swaps in, even what no
	// projector has applied yet (a rebuild right after a write, from the command line): the
	// rebuild waits, a while, for the transactions running now, anywhere on the server, to
	// end. One that runs longer is logged, and the rebuild then reaches the live checkpoint.
	if now, err := r.store.Now(ctx); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	} else if ok, err := r.store.WaitReadable(ctx, now, settleRebuild); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	} else if !ok {
		r.logger.WarnContext(ctx, "projection rebuild: a long transaction holds back the log; events it holds back are applied by the projector after the swap", "projection", name, "waited", settleRebuild)
	}

	var applied int64
	report := func() {
		if progress == nil {
			return
		}
		var at string
		_ = r.pool.QueryRow(ctx, pgsql.CheckpointsRead, checkpoint).Scan(&at)
		progress(applied, at)
	}
	// Caught up means at or past the live table's checkpoint, not merely at the end of what
	// the log shows now: while a long transaction elsewhere holds the horizon back, the copy
	// could otherwise be swapped in behind the table it replaces.
	for {
		n, caughtUp, err := r.step(ctx, p, checkpoint, copyName)
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", name, err)
		}
		applied += int64(n)
		report()
		if caughtUp {
			behind, err := r.behindLive(ctx, r.pool, name, checkpoint)
			if err != nil {
				return fmt.Errorf("rebuild %s: %w", name, err)
			}
			if !behind {
				break
			}
			select { // the horizon moves when the transaction holding it ends
			case <-ctx.Done():
				return fmt.Errorf("rebuild %s: %w", name, context.Cause(ctx))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	// The swap: the live projector waits on its lock while the copy takes the last events and
	// its place.
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgsql.CheckpointsLock, name); err != nil {
			return err
		}
		for rounds := 0; ; rounds++ {
			n, caughtUp, err := r.stepInTx(ctx, tx, p, checkpoint, copyName)
			if err != nil {
				return err
			}
			applied += int64(n)
			if !caughtUp {
				continue
			}
			// The live checkpoint cannot move now (its lock is held), and everything up to it
			// was visible to its projector, so the copy reaches it.
			behind, err := r.behindLive(ctx, tx, name, checkpoint)
			if err != nil {
				return err
			}
			if !behind {
				break
			}
			if rounds > 1000 {
				return errors.New("the copy cannot reach the live table's checkpoint")
			}
		}
		// The live table's index and constraint names, to give to the copy's once the old
		// table is gone, so that a later migration naming them works after a rebuild too.
		renames, err := keepNames(ctx, tx, name, copyName)
		if err != nil {
			return err
		}
		for _, stmt := range append(pgsql.ProjectionSwapTables(name, copyName, name+"_old"), renames...) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, pgsql.ProjectionTakeCheckpoint, name, checkpoint)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, pgsql.ProjectionDeleteCheckpoint, checkpoint)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", name, err)
	}
	report()
	r.logger.InfoContext(ctx, "projection rebuilt", "projection", name, "events", applied, "duration", time.Since(started))
	r.Wake()
	return nil
}

// keepNames returns the statements that give the indexes and constraints of table copyName, once
// it is renamed to name and the live table is dropped, the names the live table's had. It reads
// the names before the swap renames anything, and fails when the two tables' indexes or
// constraints do not correspond one to one (the live table changed during the rebuild, or has
// what LIKE does not copy, such as a foreign key): a swap would lose them or their names.
//
// No rename collides: each index takes the name of one of the dropped table's, free by then, and
// the copy's own index names differ from all of those (they were in the same schema at once).
// LIKE copies the names of check constraints, so those are seldom renamed at all.
func keepNames(ctx context.Context, tx pgx.Tx, name, copyName string) ([]string, error) {
	rows, err := tx.Query(ctx, pgsql.ProjectionIndexesAndConstraints, name, copyName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type entry struct {
		constraint bool
		key        string
	}
	var (
		schema       string
		live, copied = map[entry][]string{}, map[entry][]string{}
	)
	for rows.Next() {
		var (
			isCopy bool
			e      entry
			n      string
		)
		if err := rows.Scan(&schema, &isCopy, &e.constraint, &n, &e.key); err != nil {
			return nil, err
		}
		if isCopy {
			copied[e] = append(copied[e], n)
		} else {
			live[e] = append(live[e], n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for e := range copied {
		if _, ok := live[e]; !ok {
			return nil, fmt.Errorf("the rebuilt table has %v, which %s no longer has", copied[e], name)
		}
	}
	var stmts []string
	for e, liveNames := range live {
		copyNames := copied[e]
		if len(copyNames) != len(liveNames) {
			return nil, fmt.Errorf("%s has %v, the rebuilt table %v: changed during the rebuild, or not copied by LIKE", name, liveNames, copyNames)
		}
		// Alike ones (the same index twice) pair in any order; a name both have stays.
		liveNames, copyNames = slices.Clone(liveNames), slices.Clone(copyNames)
		liveNames = slices.DeleteFunc(liveNames, func(n string) bool {
			i := slices.Index(copyNames, n)
			if i >= 0 {
				copyNames = slices.Delete(copyNames, i, i+1)
			}
			return i >= 0
		})
		slices.Sort(liveNames)
		slices.Sort(copyNames)
		for i, to := range liveNames {
			if e.constraint {
				stmts = append(stmts, pgsql.ProjectionRenameConstraint(schema, name, copyNames[i], to))
			} else {
				stmts = append(stmts, pgsql.ProjectionRenameIndex(schema, copyNames[i], to))
			}
		}
	}
	return stmts, nil
}
