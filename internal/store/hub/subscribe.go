package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// subscriber is a subscription as the feed sees it.
type subscriber struct {
	filter  Filter
	ch      chan *eventstore.RecordedEvent // pointers: a buffer costs 8 bytes a slot until used
	behind  chan struct{}                  // poked when the feed took it out because its buffer was full
	once    sync.Once
	err     error         // why the feed dropped it; set before dropped is closed
	dropped chan struct{} // closed when the feed drops it
}

// Subscription is a live subscription: C yields its events in the global order; once C is
// closed, Err says why (nil when the caller's context ended).
type Subscription struct {
	C   <-chan eventstore.RecordedEvent
	s   *subscriber
	mu  sync.Mutex
	err error
}

// Err returns why the subscription ended, once C is closed or Dropped is.
func (s *Subscription) Err() error {
	select {
	case <-s.s.dropped:
		return s.s.err
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Dropped is closed as soon as the feed drops the subscription (the hub stopped), before C
// ends: a consumer blocked on its client can stop at once.
func (s *Subscription) Dropped() <-chan struct{} { return s.s.dropped }

func (h *Hub) registerLocked(s *subscriber) {
	var set map[*subscriber]struct{}
	switch {
	case s.filter.StreamID != "":
		if set = h.byStrm[s.filter.StreamID]; set == nil {
			set = map[*subscriber]struct{}{}
			h.byStrm[s.filter.StreamID] = set
		}
	case s.filter.Category != "":
		if set = h.byCat[s.filter.Category]; set == nil {
			set = map[*subscriber]struct{}{}
			h.byCat[s.filter.Category] = set
		}
	default:
		set = h.all
	}
	set[s] = struct{}{}
	h.count++
}

// removeLocked takes s out of the feed; it reports whether s was in it.
func (h *Hub) removeLocked(s *subscriber) bool {
	var set map[*subscriber]struct{}
	switch {
	case s.filter.StreamID != "":
		set = h.byStrm[s.filter.StreamID]
	case s.filter.Category != "":
		set = h.byCat[s.filter.Category]
	default:
		set = h.all
	}
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 && s.filter.StreamID != "" {
		delete(h.byStrm, s.filter.StreamID)
	} else if len(set) == 0 && s.filter.Category != "" {
		delete(h.byCat, s.filter.Category)
	}
	h.count--
	return true
}

// behindLocked takes s out of the feed because its buffer is full: rather than wait for it, or
// hold more of its events, the feed lets it read on from the table by itself (deliver).
func (h *Hub) behindLocked(s *subscriber) {
	if h.removeLocked(s) {
		h.lagged++
		if h.opts.Observer != nil {
			h.opts.Observer.SubscriberBehind()
		}
		select {
		case s.behind <- struct{}{}:
		default:
		}
	}
}

// dropLocked ends s with err: it takes it out of the feed and closes dropped; what is still
// in its buffer is not delivered (the client resumes from the last position it received).
func (h *Hub) dropLocked(s *subscriber, err error) {
	if !h.removeLocked(s) {
		return
	}
	s.once.Do(func() {
		s.err = err
		close(s.dropped)
	})
}

// Subscribe starts a subscription to the events f selects. With after set, it first delivers
// every matching event after that position from the table, then goes live; without, it
// delivers only events the feed reads from now on. A subscriber that falls a buffer behind
// reads on from the table by itself and rejoins the feed when caught up: it holds at most its
// buffer and one page of events, and slows no one. The subscription ends when ctx ends or when
// the hub stops (ErrStopped); a client that stops reading is ended by its connection's write
// timeout.
func (h *Hub) Subscribe(ctx context.Context, after *eventstore.Position, f Filter) (*Subscription, error) {
	out := make(chan eventstore.RecordedEvent)
	sub := &Subscription{C: out}
	emit := func(e eventstore.RecordedEvent, stop <-chan struct{}) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		}
	}
	end := func(err error) {
		sub.mu.Lock()
		sub.err = err
		sub.mu.Unlock()
		close(out)
	}
	s, err := h.follow(ctx, after, f, emit, end)
	if err != nil {
		return nil, err
	}
	sub.s = s
	return sub, nil
}

// Follow is Subscribe without a channel in between, for a consumer that has its own (the
// GraphQL layer): emit is called with each event in turn, from the subscription's one
// goroutine, and returns false to stop; stop is closed when the hub drops the subscription, so
// an emit blocked on a slow client can give up. end is called once, last, with why the
// subscription ended: nil when ctx ended or emit stopped, else ErrStopped or a read error.
func (h *Hub) Follow(ctx context.Context, after *eventstore.Position, f Filter, emit func(e eventstore.RecordedEvent, stop <-chan struct{}) bool, end func(error)) error {
	_, err := h.follow(ctx, after, f, emit, end)
	return err
}

func (h *Hub) follow(ctx context.Context, after *eventstore.Position, f Filter, emit func(eventstore.RecordedEvent, <-chan struct{}) bool, end func(error)) (*subscriber, error) {
	select {
	case <-h.started:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	s := &subscriber{filter: f, ch: make(chan *eventstore.RecordedEvent, h.opts.Buffer), behind: make(chan struct{}, 1), dropped: make(chan struct{})}
	if after == nil {
		// While nobody listens the feed skips ahead only now and then (idleSkipEvery): a live
		// subscription, which starts at the feed, has it skip to now first, so that it gets
		// what is appended from now on, not the last moments' events.
		h.mu.Lock()
		idle := h.count == 0
		h.mu.Unlock()
		var horizon eventstore.Position
		var herr error
		if idle {
			horizon, herr = h.store.Horizon(ctx)
		}
		h.mu.Lock()
		if idle && herr == nil && h.count == 0 && horizon.Compare(h.last) > 0 {
			h.last = horizon
		}
		if h.stopped {
			h.mu.Unlock()
			return nil, ErrStopped
		}
		h.registerLocked(s)
		h.mu.Unlock()
		h.countIn()
		go h.deliver(ctx, s, nil, eventstore.Position{}, emit, end)
		return s, nil
	}
	h.countIn()
	go h.deliver(ctx, s, after, *after, emit, end)
	return s, nil
}

// countIn counts a subscription in before its goroutine runs, so that it shows as soon as
// Subscribe returns; deliver counts it out.
func (h *Hub) countIn() {
	if h.opts.Observer != nil {
		h.opts.Observer.SubscriptionStarted()
	}
}

// deliver runs one subscription: catch-up from the table when from is set, then the live
// buffer, skipping what catch-up already delivered.
func (h *Hub) deliver(ctx context.Context, s *subscriber, from *eventstore.Position, delivered eventstore.Position, emit func(eventstore.RecordedEvent, <-chan struct{}) bool, end func(error)) {
	defer func() {
		h.mu.Lock()
		h.removeLocked(s)
		h.mu.Unlock()
		if h.opts.Observer != nil {
			h.opts.Observer.SubscriptionEnded()
		}
	}()
	send := func(e eventstore.RecordedEvent) bool {
		if !emit(e, s.dropped) {
			return false
		}
		delivered = e.Position
		return true
	}
	if from != nil {
		var err error
		if delivered, err = h.catchUp(ctx, s, *from, send); err != nil {
			if ctx.Err() != nil || errors.Is(err, errConsumerStopped) {
				err = dropErr(s)
			}
			end(err)
			return
		}
	}
	for {
		select {
		case e := <-s.ch:
			if e.Position.Compare(delivered) <= 0 {
				continue // catch-up delivered it already
			}
			if !send(*e) {
				end(dropErr(s))
				return
			}
		case <-s.behind:
			// The feed let go of it (its buffer was full): deliver what is buffered, then read
			// the rest from the table, and join the feed again once caught up.
			for drained := false; !drained; {
				select {
				case e := <-s.ch:
					if e.Position.Compare(delivered) > 0 && !send(*e) {
						end(dropErr(s))
						return
					}
				default:
					drained = true
				}
			}
			var err error
			if delivered, err = h.catchUp(ctx, s, delivered, send); err != nil {
				if ctx.Err() != nil || errors.Is(err, errConsumerStopped) {
					err = dropErr(s)
				}
				end(err)
				return
			}
		case <-s.dropped:
			end(s.err)
			return
		case <-ctx.Done():
			end(dropErr(s))
			return
		}
	}
}

// errConsumerStopped: emit returned false during catch-up.
var errConsumerStopped = errors.New("consumer stopped")

// dropErr is why s ended: the hub's reason when it dropped s, else nil (the consumer stopped).
func dropErr(s *subscriber) error {
	select {
	case <-s.dropped:
		return s.err
	default:
		return nil
	}
}

// catchUp reads matching events after from out of the table and sends them, until it has read
// up to where the feed is; then it registers s with the feed, under the feed's lock, so the
// feed's next event is one catch-up has not read. It returns the last position sent.
func (h *Hub) catchUp(ctx context.Context, s *subscriber, from eventstore.Position, send func(eventstore.RecordedEvent) bool) (eventstore.Position, error) {
	delivered, readTo := from, from
	category := s.filter.Category
	if s.filter.StreamID != "" {
		category = eventstore.Category(s.filter.StreamID)
	}
	for {
		horizon, err := h.store.Horizon(ctx)
		if err != nil {
			if err := h.awaitDatabase(ctx, err); err != nil {
				return delivered, err
			}
			continue
		}
		var events []eventstore.RecordedEvent
		if q := s.filter.Query; q != nil {
			// The query's indexes find its events; the other fields filter them below.
			events, err = h.store.ReadQuery(ctx, *q, readTo, h.opts.Batch)
		} else {
			events, err = h.store.ReadAll(ctx, eventstore.ReadAllOptions{After: readTo, Max: h.opts.Batch, Category: category, Types: s.filter.Types})
		}
		if err != nil {
			if err := h.awaitDatabase(ctx, err); err != nil {
				return delivered, err
			}
			continue
		}
		for _, e := range events {
			readTo = e.Position
			if !s.filter.match(e) {
				continue
			}
			if !send(e) {
				return delivered, errConsumerStopped
			}
			delivered = e.Position
		}
		if len(events) == h.opts.Batch {
			continue
		}
		if horizon.Compare(readTo) > 0 {
			readTo = horizon
		}
		h.mu.Lock()
		if h.stopped {
			h.mu.Unlock()
			return delivered, ErrStopped
		}
		if h.last.Compare(readTo) <= 0 {
			h.registerLocked(s)
			h.mu.Unlock()
			return delivered, nil
		}
		h.mu.Unlock()
	}
}

// catchUpRetry spaces a catch-up's reads while only its own connection seems to have failed.
const catchUpRetry = 100 * time.Millisecond

// awaitDatabase decides what a catch-up does after a read failed with err. When the database is
// away it waits, and returns nil to read again: the subscription stays open through a restart
// of PostgreSQL and goes on from the last position it delivered. Once the feed's reads fail too,
// it waits for the feed to read again rather than knock on the database itself: during an
// outage the feed is the one reader that keeps trying, however many subscribers are catching
// up. Any other error ends the subscription.
func (h *Hub) awaitDatabase(ctx context.Context, err error) error {
	if !eventstore.IsUnavailable(err) || ctx.Err() != nil {
		return err
	}
	h.mu.Lock()
	stopped, down := h.stopped, h.down
	h.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	var retry <-chan time.Time
	if down == nil { // the feed has not failed (yet)
		t := time.NewTimer(catchUpRetry)
		defer t.Stop()
		retry = t.C
	}
	select {
	case <-ctx.Done():
		return err
	case <-down:
	case <-retry:
	}
	return nil
}
