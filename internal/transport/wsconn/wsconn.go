// Package wsconn adapts github.com/gorilla/websocket to gqlgen's WebSocket transport
// (transport.WebsocketImplementation), with what gqlgen's optional interfaces ask for: a read
// limit (message size), read deadlines (pong timeouts), and a deadline on every write, so that
// a client that stops reading cannot hold a server goroutine for ever.
package wsconn

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// Implementation accepts WebSocket connections for gqlgen.
type Implementation struct {
	// AllowedOrigins lists the origins (scheme://host[:port]) that may open a connection besides
	// the server's own. A request without an Origin header (not from a browser) is accepted.
	AllowedOrigins []string
	// WriteTimeout bounds every write; 0 means 10s.
	WriteTimeout time.Duration
	// Registry, when set, holds every open connection, so that a stopping server can close
	// them all with a reason.
	Registry *Registry
}

var _ transport.WebsocketImplementation = Implementation{}

// Accept upgrades the request to a WebSocket connection speaking one of options.Subprotocols.
func (i Implementation) Accept(w http.ResponseWriter, r *http.Request, options transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	up := websocket.Upgrader{
		Subprotocols: options.Subprotocols,
		CheckOrigin:  i.checkOrigin,
		// Clients send little after subscribing; write buffers are lent from a pool while a
		// message is written, so thousands of quiet connections do not each hold one.
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: writeBuffers,
	}
	c, err := up.Upgrade(w, r, options.ResponseHeader)
	if err != nil {
		return nil, err
	}
	timeout := i.WriteTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conn := &Conn{c: c, writeTimeout: timeout, registry: i.Registry}
	i.Registry.add(conn)
	if h, ok := r.Context().Value(holderKey{}).(*holder); ok {
		h.set(conn)
	}
	return conn, nil
}

var writeBuffers = &sync.Pool{} //nolint:gochecknoglobals // shared by every connection, as gorilla intends

// checkOrigin accepts the server's own origin, the allowed ones, and requests without Origin.
func (i Implementation) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.ContainsFunc(i.AllowedOrigins, func(o string) bool { return strings.EqualFold(strings.TrimSuffix(o, "/"), origin) })
}

// Conn is one WebSocket connection.
type Conn struct {
	c            *websocket.Conn
	writeTimeout time.Duration
	closeOnce    sync.Once
	registry     *Registry
}

// CloseInvalidMessage is graphql-transport-ws's code for a message the server cannot read.
const CloseInvalidMessage = 4400

// NextReader returns the next message; a normal close by the peer is transport.ErrWebsocketClosed.
// A message that is not JSON closes the connection with 4400 and a reason (gqlgen would close
// it with 1000, which tells the client nothing went wrong).
func (c *Conn) NextReader() (int, io.Reader, error) {
	t, r, err := c.c.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return t, r, transport.ErrWebsocketClosed
	}
	if err != nil {
		return t, r, err
	}
	// Messages are small and bounded by the read limit: reading one whole costs little.
	b, err := io.ReadAll(r)
	if err != nil {
		return t, nil, err
	}
	if !json.Valid(b) {
		c.CloseWithReason(CloseInvalidMessage, "invalid message: not JSON")
		return t, nil, transport.ErrWebsocketClosed
	}
	return t, bytes.NewReader(b), nil
}

// WriteJSON writes one message, within the write timeout.
func (c *Conn) WriteJSON(v any) error {
	if err := c.c.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	return c.c.WriteJSON(v)
}

// WriteClose sends a close frame with a code and a reason.
func (c *Conn) WriteClose(code int, message string) error {
	return c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncateReason(message)), time.Now().Add(c.writeTimeout))
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.registry.remove(c)
	return c.c.Close()
}

// Subprotocol is the negotiated subprotocol.
func (c *Conn) Subprotocol() string { return c.c.Subprotocol() }

// SetReadLimit bounds the size of a message from the client (gqlgen's PayloadReadLimit).
func (c *Conn) SetReadLimit(limit int64) { c.c.SetReadLimit(limit) }

// SetReadDeadline makes a missing pong end the connection (gqlgen's PingPongInterval).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// CloseWithReason ends the connection from the server's side: a close frame with code and
// reason, then the socket. gqlgen's read loop sees the socket closed and cleans up. It reports
// whether this call closed it: only the first call does.
func (c *Conn) CloseWithReason(code int, reason string) (closed bool) {
	c.closeOnce.Do(func() {
		_ = c.WriteClose(code, reason)
		_ = c.Close()
		closed = true
	})
	return closed
}

// truncateReason keeps a close reason within the 123 bytes a close frame allows.
func truncateReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	return s[:120] + "..."
}

// holder carries a request's connection to the resolvers of its operations.
type holder struct {
	mu   sync.Mutex
	conn *Conn
	subs int // subscriptions running on the connection
}

// TakeSubscription counts one more subscription on the connection of ctx, unless it already
// runs limit of them; release gives the place back. Outside a WebSocket connection every
// subscription is allowed.
func TakeSubscription(ctx context.Context, limit int) (release func(), ok bool) {
	h, isWS := ctx.Value(holderKey{}).(*holder)
	if !isWS {
		return func() {}, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs >= limit {
		return nil, false
	}
	h.subs++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.subs--
			h.mu.Unlock()
		})
	}, true
}

func (h *holder) set(c *Conn) {
	h.mu.Lock()
	h.conn = c
	h.mu.Unlock()
}

type holderKey struct{}

// WithHolder prepares a request's context to carry the connection Accept makes, so that
// FromContext finds it in the resolvers of the connection's operations.
func WithHolder(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), holderKey{}, &holder{})))
	})
}

// FromContext returns the WebSocket connection an operation runs on, or nil.
func FromContext(ctx context.Context) *Conn {
	h, ok := ctx.Value(holderKey{}).(*holder)
	if !ok {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn
}

// Registry is a set of open connections.
type Registry struct {
	mu    sync.Mutex
	conns map[*Conn]struct{}
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{conns: map[*Conn]struct{}{}} }

func (r *Registry) add(c *Conn) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
}

func (r *Registry) remove(c *Conn) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// Len is the number of open connections.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// CloseAll closes every open connection with code and reason, and returns how many it closed.
func (r *Registry) CloseAll(code int, reason string) int {
	r.mu.Lock()
	conns := make([]*Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.CloseWithReason(code, reason)
	}
	return len(conns)
}
