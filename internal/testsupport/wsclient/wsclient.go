// Package wsclient is a small GraphQL-over-WebSocket client speaking both subprotocols gqlgen
// serves: graphql-transport-ws (the graphql-ws library) and the legacy graphql-ws
// (subscriptions-transport-ws). Strata's tests and `strata bench subscribe` use it.
package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocols.
const (
	TransportWS = "graphql-transport-ws"
	GraphQLWS   = "graphql-ws"
)

// Message is a protocol message from the server.
type Message struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Client is one connection. Next must be called from one goroutine at a time; the other
// methods are safe for concurrent use.
type Client struct {
	conn  *websocket.Conn
	proto string
	wmu   sync.Mutex
}

// Dial connects to url (ws://host/query) with the subprotocol proto and completes
// connection_init with payload (nil for none).
func Dial(ctx context.Context, url, proto string, header http.Header, payload map[string]any) (*Client, error) {
	return DialWith(ctx, websocket.Dialer{HandshakeTimeout: 10 * time.Second}, url, proto, header, payload)
}

// DialWith is Dial with a dialer of the caller's (tests shrink socket buffers with it).
func DialWith(ctx context.Context, d websocket.Dialer, url, proto string, header http.Header, payload map[string]any) (*Client, error) {
	d.Subprotocols = []string{proto}
	conn, resp, err := d.DialContext(ctx, url, header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if conn.Subprotocol() != proto {
		_ = conn.Close()
		return nil, fmt.Errorf("dial %s: server chose subprotocol %q, not %q", url, conn.Subprotocol(), proto)
	}
	c := &Client{conn: conn, proto: proto}
	init := map[string]any{"type": "connection_init"}
	if payload != nil {
		init["payload"] = payload
	}
	if err := c.write(init); err != nil {
		_ = conn.Close()
		return nil, err
	}
	acked := time.Now().Add(10 * time.Second) // keep-alives meanwhile do not extend it
	for {
		m, err := c.readBy(acked)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("connection_init: %w", closed(err))
		}
		switch m.Type {
		case "connection_ack":
			return c, nil
		case "ka", "ping", "pong":
			continue
		default:
			// A refusal (connection_error) is followed by a close frame that says why.
			_, err := c.readBy(time.Now().Add(2 * time.Second))
			if err == nil {
				err = errors.New("the connection stayed open")
			}
			_ = conn.Close()
			return nil, fmt.Errorf("connection_init: got %s %s: %w", m.Type, m.Payload, closed(err))
		}
	}
}

// Subprotocol is the connection's subprotocol.
func (c *Client) Subprotocol() string { return c.proto }

func (c *Client) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return c.conn.WriteJSON(v)
}

// deadlineIn is the deadline timeout from now: none (the zero time) for 0, already passed for a
// negative timeout (what is left of a caller's own deadline once it has passed).
func deadlineIn(timeout time.Duration) time.Time {
	switch {
	case timeout == 0:
		return time.Time{}
	case timeout < 0:
		return time.Now()
	}
	return time.Now().Add(timeout)
}

// readBy reads the next message, waiting until deadline (the zero time: no deadline).
func (c *Client) readBy(deadline time.Time) (Message, error) {
	var m Message
	// No deadline clears the one an earlier read set (Dial's connection_init wait): left in
	// place, it would end Next(0) ten seconds after Dial.
	if err := c.conn.SetReadDeadline(deadline); err != nil {
		return m, err
	}
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode %s: %w", b, err)
	}
	return m, nil
}

// Subscribe starts the operation id.
func (c *Client) Subscribe(id, query string, vars map[string]any) error {
	typ := "subscribe"
	if c.proto == GraphQLWS {
		typ = "start"
	}
	return c.write(map[string]any{"type": typ, "id": id, "payload": map[string]any{"query": query, "variables": vars}})
}

// Stop ends the operation id.
func (c *Client) Stop(id string) error {
	typ := "complete"
	if c.proto == GraphQLWS {
		typ = "stop"
	}
	return c.write(map[string]any{"type": typ, "id": id})
}

// Result is one result of an operation: Data for "next"/"data", Errors for "error" or errors
// in a result, Done for "complete".
type Result struct {
	ID     string
	Data   json.RawMessage
	Errors json.RawMessage
	Done   bool
}

// ErrClosed wraps the server's close frame: Code and Text say why.
type ErrClosed struct {
	Code int
	Text string
}

func (e *ErrClosed) Error() string { return fmt.Sprintf("closed by the server: %d %s", e.Code, e.Text) }

// Next returns the next result of any operation, answering pings and skipping keep-alives.
// timeout bounds the whole wait, keep-alives and pings included (0: none; negative: already
// over). A close by the server is *ErrClosed.
func (c *Client) Next(timeout time.Duration) (Result, error) {
	deadline := deadlineIn(timeout)
	for {
		m, err := c.readBy(deadline)
		if err != nil {
			return Result{}, closed(err)
		}
		switch m.Type {
		case "ping":
			if err := c.write(map[string]any{"type": "pong"}); err != nil {
				return Result{}, err
			}
		case "pong", "ka":
		case "next", "data":
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return Result{}, err
			}
			return Result{ID: m.ID, Data: p.Data, Errors: p.Errors}, nil
		case "error":
			return Result{ID: m.ID, Errors: m.Payload}, nil
		case "complete":
			return Result{ID: m.ID, Done: true}, nil
		case "connection_error":
			return Result{Errors: m.Payload}, nil
		default:
			return Result{}, fmt.Errorf("unexpected message %s", m.Type)
		}
	}
}

// Close closes the connection.
func (c *Client) Close() error {
	c.wmu.Lock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.conn.Close()
}

// NetConn gives tests the underlying connection (to stop reading it, say).
func (c *Client) NetConn() *websocket.Conn { return c.conn }

// closed turns the server's close frame into *ErrClosed; other errors stay as they are.
func closed(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &ErrClosed{Code: ce.Code, Text: ce.Text}
	}
	return err
}
