// Package projection keeps read models: tables derived from the event log by projectors that
// follow the global order, each with a checkpoint, asynchronously (outside the append path).
//
// A projector applies a batch of events and moves its checkpoint in one transaction, so every
// event is applied exactly once, across restarts and crashes. Each batch holds a
// transaction-scoped advisory lock per checkpoint, so batches of one projector never overlap.
//
// With several server processes on one database, each projector follows the log in one of them
// at a time: the leader of "projection:<name>" (package leader), when Options.Connect is set.
// Leadership only saves the others' work; it is not what keeps events from being applied twice.
// A leader cut off from the database may still be running a batch when another process takes
// over, and that is harmless: the batch lock makes the two take turns, and the checkpoint read
// under it, in the transaction that moves it, makes the second start where the first stopped.
// A rebuild fills a fresh copy of the table from the first event while the old one
// keeps serving, then swaps the two in one transaction.
package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/leader"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/store/readmodel"
)

// Projector is one read model: how an event changes its table.
type Projector interface {
	// Name identifies the projector and its checkpoint; it is also its table's name.
	Name() string
	// Category is the stream category whose events the projector reads.
	Category() string
	// Apply applies one event of its category to table (the live table or a rebuild's copy),
	// inside tx. An error that wraps ErrSkip makes the projector log the event and go on;
	// any other error stops the batch, which is tried again.
	Apply(ctx context.Context, tx pgx.Tx, table string, e eventstore.RecordedEvent) error
}

// ErrSkip marks an event a projector cannot use (undecodable data, a stream id that is not an
// aggregate's). Such events are counted in the checkpoint's skipped column and logged.
var ErrSkip = errors.New("event skipped")

// Options configures a Runner.
type Options struct {
	// Batch is the most events one transaction applies; 0 means 500.
	Batch int
	// Poll is how often an idle projector looks for new events when nothing wakes it; 0 means
	// 200ms. Appends made through this process wake it at once (Runner.Wake).
	Poll time.Duration
	// Retry is how long a projector waits after a failed batch; 0 means 1s.
	Retry time.Duration
	// IdleMove is how often at most a projector whose category has nothing new moves its
	// checkpoint to the horizon; 0 means 1s.
	IdleMove time.Duration
	// Connect, when set, opens a dedicated session to the database (not through a pooler in
	// transaction mode): each projector then runs only while this process leads
	// "projection:<name>" on such a session, and rebuilds hold their lock on one. When nil,
	// every process runs every projector, taking turns batch by batch, and rebuilds lock on
	// a pool connection.
	Connect func(context.Context) (*pgx.Conn, error)
	// Leadership configures the competition for leadership when Connect is set.
	Leadership leader.Options
	// TracerProvider makes a span per batch applied (trace.go); nil: the global one.
	TracerProvider trace.TracerProvider
}

func (o Options) withDefaults() Options {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.IdleMove <= 0 {
		o.IdleMove = time.Second
	}
	return o
}

// Runner runs projectors and answers for them: status, waits, rebuilds.
type Runner struct {
	pool       *pgxpool.Pool
	store      *eventstore.Store
	projectors []Projector
	opts       Options
	logger     *slog.Logger
	wake       map[string]chan struct{}
	idleMu     sync.Mutex
	idleMoved  map[string]time.Time // checkpoint → its last idle move
	tracer     trace.Tracer
}

// NewRunner returns a Runner for projectors on pool.
func NewRunner(pool *pgxpool.Pool, store *eventstore.Store, projectors []Projector, opts Options, logger *slog.Logger) *Runner {
	r := &Runner{pool: pool, store: store, projectors: projectors, opts: opts.withDefaults(), logger: logger, wake: map[string]chan struct{}{}, idleMoved: map[string]time.Time{}, tracer: newTracer(opts.TracerProvider)}
	for _, p := range projectors {
		r.wake[p.Name()] = make(chan struct{}, 1)
	}
	return r
}

// Default returns the projectors of the registered aggregates' read models, and the order
// statistics.
func Default() []Projector { return append(For(aggregates.All()), OrderStats{}) }

// Projector returns the projector called name.
func (r *Runner) Projector(name string) (Projector, error) {
	for _, p := range r.projectors {
		if p.Name() == name {
			return p, nil
		}
	}
	names := make([]string, len(r.projectors))
	for i, p := range r.projectors {
		names[i] = p.Name()
	}
	return nil, &eventstore.ValidationError{Field: "name", Reason: fmt.Sprintf("no projection %q; there are %s", name, strings.Join(names, ", "))}
}

// Wake tells every projector that there may be new events. It never blocks.
func (r *Runner) Wake() { r.WakeFor(nil) }

// WakeFor tells the projectors of categories (nil: every projector) that there may be new
// events: a projector of another category has nothing to read, and is not woken. It never
// blocks.
func (r *Runner) WakeFor(categories []string) {
	for _, p := range r.projectors {
		if categories != nil && p.Category() != "" && !slices.Contains(categories, p.Category()) {
			continue
		}
		select {
		case r.wake[p.Name()] <- struct{}{}:
		default:
		}
	}
}

// wakeOne wakes projector name, when it is one of this runner's (a rebuild's copy is not:
// then every projector is woken, as the copy's rebuild follows them).
func (r *Runner) wakeOne(name string) {
	ch, ok := r.wake[name]
	if !ok {
		r.Wake()
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// LeaderName is the leadership a process must hold to run projector name.
func LeaderName(name string) string { return "projection:" + name }

// Run runs every projector until ctx ends (each only while this process leads it, when
// Options.Connect is set); it returns nil then. Failed batches are logged and tried again, so a
// database that goes away and comes back does not stop the server.
func (r *Runner) Run(ctx context.Context) error {
	// A read model whose table does not fit its declaration fails every batch; say so once, at
	// the start, in words an operator can act on.
	for _, p := range r.projectors {
		if c, ok := p.(interface {
			Check(context.Context, readmodel.DB) error
		}); ok {
			if err := c.Check(ctx, r.pool); errors.Is(err, readmodel.ErrMismatch) {
				r.logger.ErrorContext(ctx, "projection cannot apply events: its table does not fit its read model", "projection", p.Name(), "err", err)
			}
		}
	}
	done := make(chan struct{}, len(r.projectors))
	for _, p := range r.projectors {
		go func() {
			defer func() { done <- struct{}{} }()
			if r.opts.Connect == nil {
				r.follow(ctx, p)
				return
			}
			leader.Run(ctx, r.opts.Connect, LeaderName(p.Name()), r.opts.Leadership, func(ctx context.Context) {
				r.follow(ctx, p)
			})
		}()
	}
	for range r.projectors {
		<-done
	}
	return nil
}

func (r *Runner) follow(ctx context.Context, p Projector) {
	wait := time.NewTimer(0)
	defer wait.Stop()
	recorded := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake[p.Name()]:
		case <-wait.C:
		}
		if !recorded {
			// The scavenger and the archiver wait for this checkpoint only on events of its
			// category; until it is written, on every event.
			if _, err := r.pool.Exec(ctx, pgsql.CheckpointsSetCategory, p.Name(), p.Category()); err == nil {
				recorded = true
			} else if ctx.Err() == nil {
				r.logger.WarnContext(ctx, "projection could not record its category; trying again", "projection", p.Name(), "err", err)
			}
		}
		for {
			n, caughtUp, err := r.step(ctx, p, p.Name(), p.Name())
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				level := slog.LevelError
				if eventstore.IsUnavailable(err) {
					level = slog.LevelWarn // the database is away: nothing to fix here, it will be tried again
				}
				r.logger.Log(ctx, level, "projection batch failed; trying again", "projection", p.Name(), "err", err)
				wait.Reset(r.opts.Retry)
				break
			}
			if n > 0 {
				r.logger.DebugContext(ctx, "projection applied events", "projection", p.Name(), "events", n)
			}
			if caughtUp {
				wait.Reset(r.opts.Poll)
				break
			}
		}
	}
}

// step applies the next batch of events to table and moves the checkpoint called checkpoint,
// in one transaction. caughtUp says the batch reached the end of the log as it stood.
//
// The transaction takes the checkpoint's lock, reads the checkpoint and the horizon, then the
// batch through the same connection (so it never waits for a second one while it holds one, and
// any number of projectors share a pool of any size), applies it and moves the checkpoint: one
// PostgreSQL transaction per batch, an empty one included, as the log grows with every append.
func (r *Runner) step(ctx context.Context, p Projector, checkpoint, table string) (applied int, caughtUp bool, err error) {
	start := time.Now() // of the batch's span, which starts once there is something to apply
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgsql.CheckpointsLock, checkpoint); err != nil {
			return fmt.Errorf("lock checkpoint %s: %w", checkpoint, err)
		}
		// The checkpoint and the horizon in one statement, under the lock; the horizon is read
		// before the events: everything of the category before it is in this read, or in an
		// earlier one, when the read comes back short.
		var (
			at   string
			xmin uint64
		)
		if err := tx.QueryRow(ctx, pgsql.CheckpointsReadWithHorizon, checkpoint).Scan(&at, &xmin); err != nil {
			return fmt.Errorf("read checkpoint %s: %w", checkpoint, err)
		}
		after, err := eventstore.ParsePosition(at)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", checkpoint, err)
		}
		b, err := r.readAfter(ctx, tx, p, after, eventstore.HorizonOf(xmin))
		if err != nil {
			return err
		}
		if len(b.events) == 0 {
			// Nothing of the category: the checkpoint moves to the horizon at most once per
			// IdleMove: each write commits and flushes the WAL, and would otherwise follow every
			// append of every other category. WaitFor does not wait for it (quiet).
			caughtUp = true
			if b.horizon.Compare(after) > 0 && (checkpoint != p.Name() || r.idleDue(checkpoint)) { // a rebuild's copy is not held back
				if _, err := tx.Exec(ctx, pgsql.CheckpointsMoveIdle, checkpoint, at, b.horizon.String()); err != nil {
					return fmt.Errorf("move checkpoint %s: %w", checkpoint, err)
				}
			}
			return nil
		}
		ctx, span := r.startBatch(ctx, p, checkpoint, len(b.events), start)
		applied, caughtUp, err = r.apply(ctx, tx, p, checkpoint, table, b)
		endBatch(span, applied, err)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return applied, caughtUp, nil
}

// stepInTx is step inside tx, which holds the checkpoint's lock until it ends (a rebuild's
// swap): the batch is read on a second connection.
func (r *Runner) stepInTx(ctx context.Context, tx pgx.Tx, p Projector, checkpoint, table string) (int, bool, error) {
	after, err := lockCheckpoint(ctx, tx, checkpoint)
	if err != nil {
		return 0, false, err
	}
	b, err := r.read(ctx, p, after)
	if err != nil {
		return 0, false, err
	}
	if len(b.events) == 0 {
		return r.apply(ctx, tx, p, checkpoint, table, b) // moves the checkpoint to the horizon
	}
	ctx, span := r.startBatch(ctx, p, checkpoint, len(b.events), time.Now())
	applied, caughtUp, err := r.apply(ctx, tx, p, checkpoint, table, b)
	endBatch(span, applied, err)
	return applied, caughtUp, err
}

// lockCheckpoint takes checkpoint's lock in tx and reads it under the lock. The lock takes no
// transaction id, so waiting on it holds back no reader of the log.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, checkpoint string) (eventstore.Position, error) {
	if _, err := tx.Exec(ctx, pgsql.CheckpointsLock, checkpoint); err != nil {
		return eventstore.Position{}, fmt.Errorf("lock checkpoint %s: %w", checkpoint, err)
	}
	var at string
	if err := tx.QueryRow(ctx, pgsql.CheckpointsRead, checkpoint).Scan(&at); err != nil {
		return eventstore.Position{}, fmt.Errorf("read checkpoint %s: %w", checkpoint, err)
	}
	after, err := eventstore.ParsePosition(at)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("checkpoint %s: %w", checkpoint, err)
	}
	return after, nil
}

// batch is what one step applies: the events of a category after a checkpoint, and the horizon
// read before them.
type batch struct {
	after   eventstore.Position
	horizon eventstore.Position
	events  []eventstore.RecordedEvent
}

func (r *Runner) read(ctx context.Context, p Projector, after eventstore.Position) (batch, error) {
	// The horizon is read before the events: everything of the category before it is in this
	// read, or in an earlier one, when the read comes back short.
	horizon, err := r.store.Horizon(ctx)
	if err != nil {
		return batch{}, err
	}
	return r.readAfter(ctx, r.pool, p, after, horizon)
}

// idleDue reports whether the idle checkpoint called checkpoint may move now, and if so notes
// that it does.
func (r *Runner) idleDue(checkpoint string) bool {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	if last, ok := r.idleMoved[checkpoint]; ok && time.Since(last) < r.opts.IdleMove {
		return false
	}
	r.idleMoved[checkpoint] = time.Now()
	return true
}

// quiet reports whether projection name, at the checkpoint at, is as it would be at pos: no
// event of its category lies between the two, and db shows everything up to pos.
func (r *Runner) quiet(ctx context.Context, db CheckpointReader, name, at string, pos eventstore.Position) (bool, error) {
	p, err := r.Projector(name)
	if err != nil {
		return false, nil //nolint:nilerr // not a projector of this runner's (a rebuild's copy): wait for its checkpoint
	}
	after, err := eventstore.ParsePosition(at)
	if err != nil {
		return false, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return eventstore.Quiet(ctx, db, p.Category(), after, pos)
}

// readAfter reads the batch after after through q (a transaction, or the pool), with the
// horizon read before it.
func (r *Runner) readAfter(ctx context.Context, q eventstore.RowsQuerier, p Projector, after, horizon eventstore.Position) (batch, error) {
	events, err := r.store.ReadAllIn(ctx, q, eventstore.ReadAllOptions{After: after, Max: r.opts.Batch, Category: p.Category()})
	if err != nil {
		return batch{}, err
	}
	return batch{after: after, horizon: horizon, events: events}, nil
}

// apply applies b to table in tx and moves the checkpoint.
func (r *Runner) apply(ctx context.Context, tx pgx.Tx, p Projector, checkpoint, table string, b batch) (int, bool, error) {
	next := b.after
	skipped := 0
	for _, e := range b.events {
		if err := p.Apply(ctx, tx, table, e); err != nil {
			if !errors.Is(err, ErrSkip) {
				return 0, false, fmt.Errorf("%s: apply %s %s@%d: %w", p.Name(), e.Type, e.StreamID, e.Version, err)
			}
			skipped++
			r.logger.WarnContext(ctx, "projection skipped an event", "projection", p.Name(), "stream_id", e.StreamID, "version", e.Version, "type", e.Type, "err", err)
		}
		next = e.Position
	}
	caughtUp := len(b.events) < r.opts.Batch
	if caughtUp && b.horizon.Compare(next) > 0 {
		next = b.horizon
	}
	if next.Compare(b.after) > 0 {
		if _, err := tx.Exec(ctx, pgsql.CheckpointsMove, checkpoint, next.String(), skipped); err != nil {
			return 0, false, fmt.Errorf("move checkpoint %s: %w", checkpoint, err)
		}
	}
	return len(b.events), caughtUp, nil
}

// ErrConsistencyTimeout is returned by WaitFor when a projection did not reach a position in
// time.
var ErrConsistencyTimeout = errors.New("projection did not catch up in time")

// WaitFor waits until projection name has applied every event up to and including pos, or
// until timeout. It is read-your-writes for a client holding the position its write returned.
func (r *Runner) WaitFor(ctx context.Context, name string, pos eventstore.Position, timeout time.Duration) error {
	return r.WaitForOn(ctx, r.pool, name, pos, timeout)
}

// CheckpointReader reads a checkpoint: a pool on the database the projectors write, or on a
// streaming replica of it.
type CheckpointReader = eventstore.Querier

// WaitForOn is WaitFor reading the checkpoint through db, which may be a streaming replica of
// the projectors' database: the checkpoint row is written in the transaction that applies the
// events, so a replica that shows it at pos also shows the read model at pos.
func (r *Runner) WaitForOn(ctx context.Context, db CheckpointReader, name string, pos eventstore.Position, timeout time.Duration) error {
	if pos.IsZero() {
		return nil
	}
	want := pos.String()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var at string
		err := db.QueryRow(ctx, pgsql.CheckpointsRead, name).Scan(&at)
		if err == nil && at >= want {
			return nil
		}
		if err == nil {
			// A projector moves its checkpoint past other categories' events only now and
			// then (step): nothing of its own category up to pos is as good as its checkpoint.
			if quiet, err := r.quiet(ctx, db, name, at, pos); err != nil && ctx.Err() == nil {
				return err
			} else if quiet {
				return nil
			}
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("read checkpoint %s: %w", name, err)
		}
		r.wakeOne(name)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s had not reached position %s after %s", ErrConsistencyTimeout, name, want, timeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
