package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/advisory"
)

// ErrRebuildRunning is returned by Rebuild when the projection is being rebuilt already.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// Progress reports a rebuild's progress: events applied so far and the position reached.
type Progress func(applied int64, position string)

// behindLive reports whether the checkpoint copy is before the live checkpoint name.
func (r *Runner) behindLive(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name, copy string) (bool, error) {
	var live, rebuilt string
	err := q.QueryRow(ctx, `SELECT (SELECT position FROM projection_checkpoints WHERE name = $1), (SELECT position FROM projection_checkpoints WHERE name = $2)`, name, copy).Scan(&live, &rebuilt)
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

// Session advisory locks of class advisory.Rebuild mark running rebuilds, one per projection.
const (
	tryRebuildLockSQL = `SELECT pg_try_advisory_lock(` + advisory.Rebuild + `, hashtext($1))`
	rebuildUnlockSQL  = `SELECT pg_advisory_unlock(` + advisory.Rebuild + `, hashtext($1))`
)

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
	if err := conn.QueryRow(ctx, tryRebuildLockSQL, name).Scan(&locked); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	if !locked {
		return fmt.Errorf("rebuild %s: %w", name, ErrRebuildRunning)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), rebuildUnlockSQL, name) }()

	live := pgx.Identifier{name}.Sanitize()
	copyName := name + "_rebuild"
	copyTable := pgx.Identifier{copyName}.Sanitize()
	checkpoint := name + ".rebuild"
	// A rebuild that died left its copy behind; this one starts over.
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+copyTable); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE `+copyTable+` (LIKE `+live+` INCLUDING ALL)`); err != nil {
		return fmt.Errorf("rebuild %s: make the copy: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO projection_checkpoints (name) VALUES ($1)
ON CONFLICT (name) DO UPDATE SET position = '', skipped = 0, updated_at = now()`, checkpoint); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	r.logger.InfoContext(ctx, "projection rebuild started", "projection", name)
	started := time.Now()

	var applied int64
	report := func() {
		if progress == nil {
			return
		}
		var at string
		_ = r.pool.QueryRow(ctx, readCheckpointSQL, checkpoint).Scan(&at)
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
		if _, err := tx.Exec(ctx, lockCheckpointSQL, name); err != nil {
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
		old := pgx.Identifier{name + "_old"}.Sanitize()
		for _, stmt := range []string{
			`ALTER TABLE ` + live + ` RENAME TO ` + pgx.Identifier{name + "_old"}.Sanitize(),
			`ALTER TABLE ` + copyTable + ` RENAME TO ` + live,
			`DROP TABLE ` + old,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints AS l SET position = c.position, skipped = c.skipped, updated_at = now()
FROM projection_checkpoints AS c WHERE l.name = $1 AND c.name = $2`, name, checkpoint)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, checkpoint)
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
