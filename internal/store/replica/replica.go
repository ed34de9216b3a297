// Package replica decides, read by read, whether a query goes to the read replica (a streaming
// replica of the primary, READ_DATABASE_URL) or to the primary, and keeps count of the reads
// that meant to go to the replica and did not.
//
// A replica that fails a read is left alone for a while (RetryAfter): reads go to the primary
// meanwhile, so a replica that is down costs one failed attempt per RetryAfter, not one per
// read. The package holds the replica's pool; what runs on it (stores, readers) is built by
// the caller.
package replica

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// Reasons a read meant for the replica went to the primary: the values of
// strata_read_fallbacks_total's reason label.
const (
	ReasonUnavailable = "unavailable" // the replica could not be reached or went away
	ReasonDown        = "down"        // it failed recently and is left alone
	ReasonBehind      = "behind"      // it had not replayed what the read needed in time
	ReasonError       = "error"       // it refused the statement (e.g. a recovery conflict)
)

// Reasons lists every fallback reason.
func Reasons() []string { return []string{ReasonUnavailable, ReasonDown, ReasonBehind, ReasonError} }

// DefaultRetryAfter is Options.RetryAfter's default.
const DefaultRetryAfter = 5 * time.Second

// Observer is told of every fallback (metrics.Metrics).
type Observer interface {
	ReadFallback(reason string)
}

// Options configures a Router.
type Options struct {
	// RetryAfter is how long reads skip a replica that failed; 0 means DefaultRetryAfter.
	RetryAfter time.Duration
	// Observer, when set, counts fallbacks.
	Observer Observer
}

// Router routes reads between the replica and the primary. It is safe for concurrent use.
type Router struct {
	pool      *pgxpool.Pool
	opts      Options
	logger    *slog.Logger
	downUntil atomic.Int64 // unix nanoseconds; 0: up
}

// New returns a Router for the replica behind pool.
func New(pool *pgxpool.Pool, opts Options, logger *slog.Logger) *Router {
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	return &Router{pool: pool, opts: opts, logger: logger}
}

// Pool is the replica's pool.
func (r *Router) Pool() *pgxpool.Pool { return r.pool }

// Up reports whether reads go to the replica now: false for RetryAfter after it failed.
func (r *Router) Up() bool {
	until := r.downUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

// Use reports whether a read should try the replica; when not, it counts the read as a fallback
// (down).
func (r *Router) Use(ctx context.Context) bool {
	if r.Up() {
		return true
	}
	r.Fallback(ctx, ReasonDown, nil)
	return false
}

// Failed looks at the error a read on the replica returned: when the replica is to blame (it
// is unreachable, or refused the statement) it counts a fallback, leaves an unreachable replica
// alone for RetryAfter, and returns true: the read is to be made on the primary. A caller's
// cancelled context, or an input the store refused, is no fault of the replica's: false.
func (r *Router) Failed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if eventstore.IsUnavailable(err) {
		if r.Up() {
			r.downUntil.Store(time.Now().Add(r.opts.RetryAfter).UnixNano())
			r.logger.WarnContext(ctx, "read replica unavailable: reads go to the primary for a while",
				"retry_after", r.opts.RetryAfter, "err", err)
		}
		r.Fallback(ctx, ReasonUnavailable, nil)
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		r.Fallback(ctx, ReasonError, err)
		return true
	}
	return false
}

// Fallback counts a read meant for the replica that goes to the primary, and logs why (at warn
// when err says more than the reason).
func (r *Router) Fallback(ctx context.Context, reason string, err error) {
	if r.opts.Observer != nil {
		r.opts.Observer.ReadFallback(reason)
	}
	if err != nil {
		r.logger.WarnContext(ctx, "read goes to the primary", "reason", reason, "err", err)
	}
}

// Check reports whether the replica answers and replays, for readiness: nil, or why not. A
// replica that answers but is not in recovery (a promoted one, or a URL naming a primary) is
// reported too: reads there may see a different history than the primary's.
func (r *Router) Check(ctx context.Context) error {
	var recovering bool
	if err := r.pool.QueryRow(ctx, pgsql.ReplicaInRecovery).Scan(&recovering); err != nil {
		return err
	}
	if !recovering {
		return errors.New("it is not a standby (pg_is_in_recovery() is false)")
	}
	return nil
}
