// Package sse writes Server-Sent Events (text/event-stream) answers that cannot pin a server
// goroutine: every write, events and keep-alive comments alike, has a deadline, so a client
// that stops reading is cut off within it; a quiet stream carries a comment every keep-alive
// interval, so that proxies and clients see it is alive; and a stopping server ends every open
// stream through a Registry. What the events say is the caller's business (graph/oversse.go:
// the graphql-sse protocol).
package sse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Options are a stream's rules.
type Options struct {
	// WriteTimeout bounds every write; 0 means 10s.
	WriteTimeout time.Duration
	// KeepAlive is how long a stream may stay quiet before a comment is written; 0 means 10s.
	KeepAlive time.Duration
	// Registry, when set, holds the stream while it is open, so that a stopping server can end
	// it.
	Registry *Registry
}

// ErrEnded is what writing to a stream that was ended returns: nothing more goes out.
var ErrEnded = errors.New("sse: the stream has ended")

// Stream is one open text/event-stream answer.
type Stream struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	registry *Registry
	cancel   context.CancelFunc

	// writing holds a token while a write is in progress: one write at a time. It is a
	// channel rather than a mutex so that End can wait for a write for a bounded time.
	writing chan struct{}
	last    time.Time // of the last write, for the keep-alive; guarded by writing

	state  sync.Mutex    // guards ending and closing, so that neither follows Close
	ended  chan struct{} // closed when the stream ends
	reason string        // why it ended; set before ended is closed
	closed bool          // Close was called: the handler may have returned
	slow   bool          // it ended because a write timed out

	keepAliveDone chan struct{}
}

type streamKey struct{}

// Start answers r with 200 and Content-Type text/event-stream, and returns the stream with a
// context that ends when the stream does: End, a failed write, or the client going away. The
// request's body must have been read: Start lifts the read deadline, as a stream lives by its
// write deadlines and keep-alives, not by how long its request took to arrive. The caller
// calls Close once it is done writing.
func Start(w http.ResponseWriter, r *http.Request, o Options) (*Stream, context.Context, error) {
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 10 * time.Second
	}
	rc := http.NewResponseController(w)
	// A writer that cannot lift the deadline has none (httptest's recorder): nothing to lift.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(r.Context())
	s := &Stream{
		w: w, rc: rc, timeout: o.WriteTimeout, registry: o.Registry, cancel: cancel,
		writing: make(chan struct{}, 1), ended: make(chan struct{}), keepAliveDone: make(chan struct{}),
	}
	ctx = context.WithValue(ctx, streamKey{}, s)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// nginx buffers answers unless told not to; an event held back is a late event.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The headers go out at once, so that the client knows the stream is open before the first
	// event, which may be a long time coming.
	if err := s.write(":\n\n"); err != nil {
		cancel()
		return nil, nil, err
	}
	o.Registry.add(s)
	go s.keepAlive(ctx, o.KeepAlive)
	return s, ctx, nil
}

// FromContext returns the stream an operation's answer is written to, or nil.
func FromContext(ctx context.Context) *Stream {
	s, _ := ctx.Value(streamKey{}).(*Stream)
	return s
}

// Event writes one event, named (empty: the default "message" event) and carrying data, which
// may span lines. It returns ErrEnded once the stream has ended, and a write's error otherwise
// (TimedOut tells a client that did not take it within the write timeout); a failed write ends
// the stream.
func (s *Stream) Event(name, data string) error {
	var b strings.Builder
	if name != "" {
		fmt.Fprintf(&b, "event: %s\n", name)
	}
	for line := range strings.SplitSeq(data, "\n") {
		if line == "" {
			b.WriteString("data:\n")
			continue
		}
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	return s.write(b.String())
}

// Comment writes a comment line, which clients ignore: a keep-alive, or why a stream ends.
func (s *Stream) Comment(text string) error {
	return s.write(": " + strings.ReplaceAll(text, "\n", " ") + "\n\n")
}

// TimedOut reports whether err is a write the client did not take within the write timeout.
func TimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (s *Stream) write(text string) error {
	s.writing <- struct{}{}
	defer func() { <-s.writing }()
	if s.isEnded() {
		return ErrEnded
	}
	err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if err == nil || errors.Is(err, http.ErrNotSupported) {
		if _, err = s.w.Write([]byte(text)); err == nil {
			err = s.rc.Flush()
		}
	}
	if err != nil {
		if s.isEnded() { // End cut the write short: not the client's doing
			return ErrEnded
		}
		s.end("write failed: "+err.Error(), TimedOut(err))
		return err
	}
	s.last = time.Now()
	return nil
}

// keepAlive writes a comment whenever the stream has been quiet for interval.
func (s *Stream) keepAlive(ctx context.Context, interval time.Duration) {
	defer close(s.keepAliveDone)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.writing <- struct{}{}
		quiet := time.Since(s.last)
		<-s.writing
		if quiet < interval {
			t.Reset(interval - quiet)
			continue
		}
		if s.Comment("keep-alive") != nil {
			return
		}
		t.Reset(interval)
	}
}

// End ends the stream from the server's side, saying why in a comment when the client can
// still take one: nothing more is written, the stream's context ends, and a write in progress
// is cut short. It reports whether this call ended it: only the first call does, and none
// after Close.
func (s *Stream) End(reason string) bool {
	s.state.Lock()
	defer s.state.Unlock()
	if s.closed || s.isEnded() {
		return false
	}
	// The reason goes out first when the connection takes it soon: a write in progress (a
	// keep-alive, an event) is waited for briefly, as a client that reads takes it at once. A
	// client that does not read gets the end of the connection instead.
	const grace = 100 * time.Millisecond
	wait := time.NewTimer(grace)
	defer wait.Stop()
	select {
	case s.writing <- struct{}{}:
		if err := s.rc.SetWriteDeadline(time.Now().Add(grace)); err == nil || errors.Is(err, http.ErrNotSupported) {
			if _, err := s.w.Write([]byte(": " + strings.ReplaceAll(reason, "\n", " ") + "\n\n")); err == nil {
				_ = s.rc.Flush()
			}
		}
		s.endLocked(reason) // before the token goes back: no write follows the reason
		<-s.writing
	case <-wait.C:
		s.endLocked(reason)
	}
	return true
}

// end marks the stream ended after a failed write; slow when the client did not take it in
// time.
func (s *Stream) end(reason string, slow bool) {
	s.state.Lock()
	defer s.state.Unlock()
	if !s.closed && !s.isEnded() {
		s.slow = slow
		s.endLocked(reason)
	}
}

// endLocked marks the stream ended: its context ends and a write that waits on the client
// gives up. s.state is held.
func (s *Stream) endLocked(reason string) {
	s.reason = reason
	close(s.ended)
	s.cancel()
	_ = s.rc.SetWriteDeadline(time.Now()) // a write blocked on a client that does not read
}

func (s *Stream) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// Ended is closed once the stream has ended (End or a failed write); Reason then says why.
func (s *Stream) Ended() <-chan struct{} { return s.ended }

// Reason is why the stream ended; "" while it has not.
func (s *Stream) Reason() string {
	if !s.isEnded() {
		return ""
	}
	return s.reason // set before ended is closed
}

// SlowConsumer reports whether the stream has ended because the client did not take a write
// within the write timeout.
func (s *Stream) SlowConsumer() bool {
	return s.isEnded() && s.slow // set before ended is closed
}

// Close releases the stream once its handler is done writing: the keep-alive stops and the
// registry lets go of it. The handler returns next, and net/http ends the answer.
func (s *Stream) Close() {
	s.state.Lock()
	s.closed = true
	s.state.Unlock()
	s.cancel()
	<-s.keepAliveDone
	s.registry.remove(s)
}

// Registry is a set of open streams.
type Registry struct {
	mu      sync.Mutex
	streams map[*Stream]struct{}
	closed  string // the reason of CloseAll; once set, a new stream is ended as it opens
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{streams: map[*Stream]struct{}{}} }

func (r *Registry) add(s *Stream) {
	if r == nil {
		return
	}
	r.mu.Lock()
	closed := r.closed
	if closed == "" {
		r.streams[s] = struct{}{}
	}
	r.mu.Unlock()
	if closed != "" {
		s.End(closed)
	}
}

func (r *Registry) remove(s *Stream) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.streams, s)
	r.mu.Unlock()
}

// Len is the number of open streams.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.streams)
}

// CloseAll ends every open stream with reason, and every stream that opens afterwards, and
// returns how many were open.
func (r *Registry) CloseAll(reason string) int {
	r.mu.Lock()
	r.closed = reason
	streams := make([]*Stream, 0, len(r.streams))
	for s := range r.streams {
		streams = append(streams, s)
	}
	r.mu.Unlock()
	// Each End may wait briefly for a write in progress: they wait side by side.
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Go(func() { s.End(reason) })
	}
	wg.Wait()
	return len(streams)
}
