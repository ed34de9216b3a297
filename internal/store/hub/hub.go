// Package hub delivers events to live subscribers. One feed per server process follows the
// global order from the events table, woken by PostgreSQL NOTIFY (sent after commit, coalesced)
// on one dedicated LISTEN connection, by appends made in this process, and by a periodic poll
// that covers a lost notification. It fans each event out to every matching subscriber's
// bounded buffer; a subscriber whose buffer is full is never waited on: it reads on from the
// table by itself and rejoins the feed when caught up.
//
// A subscription that starts from a position first reads the table (catch-up) and joins the
// live feed only once it has read up to where the feed is: no gap, and positions it has already
// delivered are skipped, so no duplicate either.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// Channel is the PostgreSQL notification channel appends are announced on.
const Channel = "strata_events"

// Options configures a Hub. Zero fields take the defaults.
type Options struct {
	// Buffer is the most events a subscriber may have waiting; 0 means 256.
	Buffer int
	// Poll is how often the feed reads the table when nothing woke it; 0 means 1s.
	Poll time.Duration
	// NotifyEvery coalesces notifications: at most one NOTIFY per interval; 0 means 5ms.
	NotifyEvery time.Duration
	// Batch is the most events the feed reads at once; 0 means 1000.
	Batch int
	// Observer, when set, is told of subscriptions starting and ending and of subscribers
	// falling behind, for metrics.
	Observer Observer
	// Connect, when set, opens the LISTEN connection: a session of its own, which a pooler in
	// transaction mode does not give (notifications would go to whichever client holds the
	// server connection then). When nil, it is made from the pool's configuration.
	Connect func(context.Context) (*pgx.Conn, error)
	// Notified, when set, is called for each notification of appends made by another process,
	// with the categories they wrote (nil: any, as from a server that does not say), on the
	// listener's goroutine: it must not block. This process's own notifications are not passed
	// on: its appends woke everything already (Appended).
	Notified func(categories []string)
	// Heard, when set, is called for every notification received, this process's own
	// included (a LISTEN connection that hears them works), on the listener's goroutine: it
	// must not block.
	Heard func()
}

// Observer is told what happens to subscriptions, on the goroutines of Subscribe's callers and
// of the subscriptions, and SubscriberBehind with the feed's lock held: it must not block.
type Observer interface {
	// SubscriptionStarted follows every subscription the hub accepts; SubscriptionEnded
	// follows its end, once.
	SubscriptionStarted()
	SubscriptionEnded()
	// SubscriberBehind follows each time a subscriber's full buffer makes the feed let go of it.
	SubscriberBehind()
}

func (o Options) withDefaults() Options {
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.NotifyEvery <= 0 {
		o.NotifyEvery = 5 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	return o
}

// ErrStopped ends subscriptions when the hub stops (the server is shutting down).
var ErrStopped = errors.New("server shutting down")

// Filter selects events; empty fields select everything.
type Filter struct {
	StreamID string
	Category string
	Types    []string
	// Query, when set, keeps only events that match it too (eventstore.Query): AND'd with the
	// fields above.
	Query *eventstore.Query
}

func (f Filter) match(e eventstore.RecordedEvent) bool {
	switch {
	case f.StreamID != "" && e.StreamID != f.StreamID:
		return false
	case f.Category != "" && eventstore.Category(e.StreamID) != f.Category:
		return false
	case len(f.Types) > 0 && !slices.Contains(f.Types, e.Type):
		return false
	case f.Query != nil && !f.Query.Matches(e):
		return false
	}
	return true
}

// Hub is the live feed of one server process.
type Hub struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	opts   Options
	logger *slog.Logger

	wake   chan struct{} // read the table now
	notify chan struct{} // send a NOTIFY soon

	// token names this process in its notifications, so that its listener knows its own.
	token     string
	notifyMu  sync.Mutex
	toNotify  []string // the categories appended since the last NOTIFY
	notifyAll bool     // too many categories to name: the next NOTIFY says "any"

	started chan struct{} // closed once last is set
	mu      sync.Mutex
	last    eventstore.Position // the feed has fanned out every event up to here
	stopped bool
	down    chan struct{} // while the feed's reads fail: closed once one succeeds again
	all     map[*subscriber]struct{}
	byStrm  map[string]map[*subscriber]struct{}
	byCat   map[string]map[*subscriber]struct{}
	count   int

	// Counters, for tests and the benchmark.
	lagged    int64
	delivered int64
}

// New returns a Hub reading store; its LISTEN connection is made from pool's configuration but
// never taken from the pool.
func New(pool *pgxpool.Pool, store *eventstore.Store, opts Options, logger *slog.Logger) *Hub {
	return &Hub{
		pool: pool, store: store, opts: opts.withDefaults(), logger: logger,
		wake: make(chan struct{}, 1), notify: make(chan struct{}, 1), started: make(chan struct{}), token: newToken(),
		all: map[*subscriber]struct{}{}, byStrm: map[string]map[*subscriber]struct{}{}, byCat: map[string]map[*subscriber]struct{}{},
	}
}

// Appended is the store's hook: an append to streams of categories committed in this process.
// It wakes the feed at once and has a NOTIFY sent (coalesced) for the other processes, naming
// the categories. It never blocks.
func (h *Hub) Appended(categories []string) {
	poke(h.wake)
	h.notifyMu.Lock()
	for _, c := range categories {
		if h.notifyAll {
			break
		}
		if !slices.Contains(h.toNotify, c) {
			h.toNotify = append(h.toNotify, c)
			h.notifyAll = len(h.toNotify) > maxNotifyCategories
		}
	}
	h.notifyMu.Unlock()
	poke(h.notify)
}

// maxNotifyCategories is the most categories a NOTIFY names; beyond, it says "any". A payload
// must stay under 8000 bytes, and a category may be as long as a stream id (256 bytes).
const maxNotifyCategories = 24

// newToken is a random name for this process in its notifications.
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// payload is the next NOTIFY's payload, taking what was appended since the last one: the
// process's token, then a line per category; the token alone means any category.
func (h *Hub) payload() string {
	h.notifyMu.Lock()
	defer h.notifyMu.Unlock()
	p := h.token
	if !h.notifyAll {
		for _, c := range h.toNotify {
			p += "\n" + c
		}
	}
	h.toNotify, h.notifyAll = h.toNotify[:0], false
	return p
}

// parsePayload reads a notification's payload: who sent it, and the categories it names (nil:
// any). A payload without lines (an older server's, empty) names no sender and any category.
func parsePayload(p string) (from string, categories []string) {
	from, rest, ok := strings.Cut(p, "\n")
	if !ok {
		return from, nil
	}
	return from, strings.Split(rest, "\n")
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run runs the feed, the listener and the notifier until ctx ends; then it ends every
// subscription with ErrStopped and returns nil.
func (h *Hub) Run(ctx context.Context) error {
	start, err := h.store.Horizon(ctx)
	for err != nil {
		h.logger.ErrorContext(ctx, "subscription feed cannot start; trying again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		start, err = h.store.Horizon(ctx)
	}
	h.mu.Lock()
	h.last = start
	h.mu.Unlock()
	close(h.started)

	var wg sync.WaitGroup
	wg.Go(func() { h.listen(ctx) })
	wg.Go(func() { h.notifier(ctx) })
	h.feed(ctx)
	wg.Wait()

	h.mu.Lock()
	h.stopped = true
	if h.down != nil {
		close(h.down) // catch-ups waiting for the database end with ErrStopped
		h.down = nil
	}
	for s := range h.all {
		h.dropLocked(s, ErrStopped)
	}
	h.mu.Unlock()
	return nil
}

// idleSkipEvery is how often at most the feed skips ahead while nobody listens: each skip
// reads the horizon, a transaction of its own, which after every append would cost as much as
// the append's NOTIFY. A subscriber that comes meanwhile has the feed read what it did not skip.
const idleSkipEvery = 100 * time.Millisecond

// feed reads new events whenever woken and fans them out.
func (h *Hub) feed(ctx context.Context) {
	var skipped time.Time // the last skip ahead
	later := time.NewTimer(time.Hour)
	later.Stop()
	defer later.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-later.C:
		}
		for {
			h.mu.Lock()
			after, idle := h.last, h.count == 0
			h.mu.Unlock()
			if idle {
				if wait := idleSkipEvery - time.Since(skipped); wait > 0 {
					later.Reset(wait) // skip then, once, for whatever woke it meanwhile
					break
				}
				if h.skipAhead(ctx) {
					skipped = time.Now()
					h.feedRead(ctx, nil) // the database answered: catch-ups waiting for it read on
					break
				}
				// A subscriber came meanwhile, and a live one moved the feed to the present
				// (follow): read from where the feed is now, not from before that move.
				h.mu.Lock()
				after = h.last
				h.mu.Unlock()
			}
			events, err := h.store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Max: h.opts.Batch})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				h.feedRead(ctx, err)
				poke(h.wake) // try again; the listener's poll paces retries too
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
				break
			}
			h.feedRead(ctx, nil)
			h.fanOut(events)
			if len(events) < h.opts.Batch {
				break
			}
		}
	}
}

// skipAhead moves the feed past what is committed without reading it, while nobody listens:
// reading and decoding every event for no subscriber cost a server under write load an eighth
// of its CPU. The horizon is where a read would have stopped (every transaction below it has
// ended, and any event committed later lies above it), so the feed is where a read would have
// left it. It gives up (false) when a subscriber registered meanwhile or the horizon cannot be
// read; the feed then reads as usual.
func (h *Hub) skipAhead(ctx context.Context) bool {
	horizon, err := h.store.Horizon(ctx)
	if err != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count != 0 {
		return false
	}
	if horizon.Compare(h.last) > 0 {
		h.last = horizon
	}
	return true
}

// feedRead records how the feed's last read went. A database that went away is logged once, and
// once more when it is back; catch-ups waiting for it (awaitDatabase) then read on.
func (h *Hub) feedRead(ctx context.Context, err error) {
	h.mu.Lock()
	failed := err != nil && h.down == nil
	back := err == nil && h.down != nil
	if failed {
		h.down = make(chan struct{})
	}
	if back {
		close(h.down)
		h.down = nil
	}
	h.mu.Unlock()
	if failed {
		h.logger.WarnContext(ctx, "subscription feed read failed; trying again until it succeeds", "err", err)
	}
	if back {
		h.logger.InfoContext(ctx, "subscription feed reads again")
	}
}

func (h *Hub) fanOut(events []eventstore.RecordedEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range events {
		e := &events[i] // shared by every subscriber it goes to; events are immutable
		for _, set := range []map[*subscriber]struct{}{h.all, h.byStrm[e.StreamID], h.byCat[eventstore.Category(e.StreamID)]} {
			for s := range set {
				if !s.filter.match(*e) {
					continue
				}
				select {
				case s.ch <- e:
					h.delivered++
				default:
					h.behindLocked(s)
				}
			}
		}
		h.last = e.Position
	}
}

// listen holds the LISTEN connection: each notification, and each poll interval without one,
// wakes the feed. A lost connection is made again, and the feed reads what it missed.
func (h *Hub) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := h.connectListener(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.logger.WarnContext(ctx, "listen connection failed; trying again", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			poke(h.wake) // poll the table meanwhile
			continue
		}
		backoff = 100 * time.Millisecond
		poke(h.wake) // whatever was appended while no one listened
		for {
			wctx, cancel := context.WithTimeout(ctx, h.opts.Poll)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if ctx.Err() != nil {
				_ = conn.Close(context.WithoutCancel(ctx))
				return
			}
			if err == nil {
				if h.opts.Heard != nil {
					h.opts.Heard()
				}
				from, categories := parsePayload(n.Payload)
				if from == h.token {
					continue // this process's appends: they woke the feed and the projectors already
				}
				if h.opts.Notified != nil {
					h.opts.Notified(categories)
				}
			}
			if err == nil || errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
				poke(h.wake) // a notification, or the periodic poll
				continue
			}
			h.logger.WarnContext(ctx, "listen connection lost; connecting again", "err", err)
			_ = conn.Close(context.WithoutCancel(ctx))
			break
		}
	}
}

func (h *Hub) connectListener(ctx context.Context) (*pgx.Conn, error) {
	var conn *pgx.Conn
	var err error
	if h.opts.Connect != nil {
		conn, err = h.opts.Connect(ctx)
	} else {
		cfg := h.pool.Config().ConnConfig.Copy()
		cfg.RuntimeParams["application_name"] = "strata listener"
		conn, err = pgx.ConnectConfig(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, pgsql.HubListen(Channel)); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// notifier sends one NOTIFY for any number of appends within NotifyEvery, outside every append
// transaction.
func (h *Hub) notifier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.notify:
		}
		if _, err := h.pool.Exec(ctx, pgsql.HubNotify, Channel, h.payload()); err != nil && ctx.Err() == nil {
			h.logger.WarnContext(ctx, "notify failed; other servers will see the events at their next poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.opts.NotifyEvery):
		}
	}
}

// Stats are the hub's counters.
type Stats struct {
	Subscribers int   // in the feed now (not counting those catching up from the table)
	Delivered   int64 // events handed to subscribers' buffers
	Lagged      int64 // times a subscriber's full buffer sent it to read from the table
	// Last is the position the feed has passed: every event up to it was fanned out, or
	// skipped while nobody listened.
	Last eventstore.Position
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Subscribers: h.count, Delivered: h.delivered, Lagged: h.lagged, Last: h.last}
}
