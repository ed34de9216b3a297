// Package leader elects, among any number of server processes sharing one database, the one
// that runs a piece of work (a projector, a scavenger) at a time.
//
// Leadership of a name is a session-level PostgreSQL advisory lock, class advisory.Leader and
// key hashtext(name), held on a connection of its own: never a pool's, whose sessions are shared.
// The lock lives exactly as long as that session. A leader that dies, or whose connection
// breaks, loses it the moment the server sees the session end; another process, trying every
// Options.Retry, takes it over.
//
// Leadership is not a fence. A leader whose session ended may keep running for up to a check
// interval (and a check's timeout, when the network is cut) before it notices, while the server
// has already handed the name to another process; the work itself must make a stale leader harmless (the projectors do: every batch
// takes a transaction lock and moves its checkpoint in the same transaction).
package leader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Options configures Run. Zero fields take the defaults.
type Options struct {
	// Retry is how often a process that does not lead tries to; 0 means 1s.
	Retry time.Duration
	// Check is how often the leader makes sure its connection still holds the lock; 0 means
	// 1s. A check that fails, or gets no answer within CheckTimeout, ends the leadership.
	Check time.Duration
	// CheckTimeout bounds a check; 0 means 5s. A slow answer is no sign of a lost lock (the
	// lock lasts as long as the session), but no answer at all may be a network cut after which
	// the server ends the session, and hands the lock on, once its keepalives give up: keep
	// it well below that.
	CheckTimeout time.Duration
	// Logger receives leadership acquired and lost; nil discards them.
	Logger *slog.Logger
	// Observer, when set, is told whether this process leads the name: false when Run starts,
	// then at every change.
	Observer Observer
}

// Observer is told of leadership changes, for metrics. It must not block.
type Observer interface {
	Leading(name string, leading bool)
}

func (o Options) withDefaults() Options {
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.Check <= 0 {
		o.Check = time.Second
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run competes for the leadership of name until ctx ends, connecting with connect (a direct
// session, not through a pooler in transaction mode). While it leads, it runs fn with a context
// that is cancelled as soon as the leadership may be lost: the connection fails a check or
// breaks, or ctx ends. Once fn has returned it gives the leadership up and competes again; fn
// should therefore return promptly when its context ends. Run returns when ctx has ended and
// fn has returned, leaving nothing running.
func Run(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), name string, opts Options, fn func(ctx context.Context)) {
	opts = opts.withDefaults()
	e := elector{connect: connect, name: name, opts: opts}
	e.observe(false)
	defer e.close(ctx)
	for {
		if e.try(ctx) {
			e.lead(ctx, fn)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.Retry):
		}
	}
}

type elector struct {
	connect func(context.Context) (*pgx.Conn, error)
	name    string
	opts    Options
	conn    *pgx.Conn // nil until connected, and after a failure
	failing bool      // the last attempt failed; logged once until one succeeds
}

func (e *elector) observe(leading bool) {
	if e.opts.Observer != nil {
		e.opts.Observer.Leading(e.name, leading)
	}
}

// try connects if need be and tries to take the lock once.
func (e *elector) try(ctx context.Context) bool {
	if e.conn == nil {
		conn, err := e.connect(ctx)
		if err != nil {
			e.failed(ctx, "leadership connection failed; trying again", err)
			return false
		}
		e.conn = conn
	}
	var locked bool
	if err := e.conn.QueryRow(ctx, pgsql.LeaderTryLock, e.name).Scan(&locked); err != nil {
		e.failed(ctx, "leadership attempt failed; trying again", err)
		e.close(ctx)
		return false
	}
	if e.failing {
		e.failing = false
		e.opts.Logger.InfoContext(ctx, "leadership connection works again", "name", e.name)
	}
	return locked
}

func (e *elector) failed(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil || e.failing {
		return
	}
	e.failing = true
	e.opts.Logger.WarnContext(ctx, msg, "name", e.name, "err", err)
}

// lead runs fn while the lock is held, then gives the lock up (or drops the connection that
// may no longer hold it).
func (e *elector) lead(ctx context.Context, fn func(context.Context)) {
	e.opts.Logger.InfoContext(ctx, "leadership acquired", "name", e.name)
	e.observe(true)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(fctx)
	}()
	healthy, reason := e.watch(fctx, done)
	e.observe(false)
	cancel()
	<-done
	switch {
	case healthy:
		// fn returned or ctx ended: the lock is given back at once, so that another process
		// takes over without waiting for this connection to close.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.CheckTimeout)
		_, err := e.conn.Exec(uctx, pgsql.LeaderUnlock, e.name)
		ucancel()
		if err != nil {
			e.close(ctx)
		}
		e.opts.Logger.InfoContext(ctx, "leadership released", "name", e.name)
	case ctx.Err() != nil:
		e.close(ctx) // cut off mid-check: closing the session releases the lock as surely
		e.opts.Logger.InfoContext(ctx, "leadership released", "name", e.name)
	default:
		e.close(ctx) // closing the session releases whatever it still holds
		e.opts.Logger.WarnContext(ctx, "leadership lost", "name", e.name, "err", reason)
	}
}

// errNotHeld says that a check found the lock held by another session or by nobody.
var errNotHeld = errors.New("the session no longer holds the lock")

// watch checks the lock every Check until fctx ends (healthy) or fn returns (healthy), or a
// check fails (not healthy, with why).
func (e *elector) watch(fctx context.Context, done <-chan struct{}) (bool, error) {
	tick := time.NewTicker(e.opts.Check)
	defer tick.Stop()
	for {
		select {
		case <-fctx.Done():
			return true, nil
		case <-done:
			return true, nil
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(fctx, e.opts.CheckTimeout)
		var held bool
		err := e.conn.QueryRow(cctx, pgsql.LeaderHolds, e.name).Scan(&held)
		cancel()
		if fctx.Err() != nil {
			// The check may have been cut off half way: the connection cannot be trusted for
			// an unlock; closing it releases the lock as surely.
			return false, context.Cause(fctx)
		}
		if err != nil {
			return false, err
		}
		if !held {
			return false, errNotHeld
		}
	}
}

func (e *elector) close(ctx context.Context) {
	if e.conn != nil {
		_ = e.conn.Close(context.WithoutCancel(ctx))
		e.conn = nil
	}
}
