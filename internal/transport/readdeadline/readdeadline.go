// Package readdeadline bounds how long a request's body may take to arrive. http.Server's
// ReadHeaderTimeout bounds the headers. http.Server.ReadTimeout would bound headers and body
// together, but as one rule for every request, set on the connection by net/http: whether it
// still holds once the body has been read, for a handler that streams its answer or for a
// connection taken over by a WebSocket, is left to net/http's internals and to the WebSocket
// library. Here the deadline is set on each request that has a body, through
// http.ResponseController, and lifted by this package once the body has been read to its end.
package readdeadline

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Body gives each request's body timeout to arrive, counted from when the request reaches the
// handler (its headers read). A body still incomplete then fails to read with an error for
// which TimedOut is true, and net/http closes the connection after the answer: whatever is left
// on the wire cannot be read as the next request. Once the body has been read to its end the
// deadline is lifted, so a handler may answer for as long as it needs. A request without a body
// (a WebSocket upgrade among them) gets no deadline here: the connection it takes over keeps
// the rules its handler sets. A timeout of 0 or less sets none.
func Body(timeout time.Duration, next http.Handler) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// A writer that cannot set deadlines (none in this server) leaves the body unbounded
		// here; nothing better can be done than serving the request.
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &body{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

// TimedOut reports whether err is a body read cut off by the deadline.
func TimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// body lifts the read deadline when the body it wraps has been read to its end. (net/http, as of
// Go 1.26, clears it too at that point, when it starts watching the connection for the client
// going away; that is its internals, not its contract, so the lifting here does not rely on it.)
// Only then: a body that failed or was left unread keeps the deadline, so that net/http, which
// discards what remains of it before answering, gives up in time and closes the connection.
// Like any request body it is read by one goroutine at a time.
type body struct {
	io.ReadCloser
	lift   func()
	lifted bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.lifted {
		b.lifted = true
		b.lift()
	}
	return n, err
}
