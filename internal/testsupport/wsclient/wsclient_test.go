package wsclient

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// keepAliveServer acknowledges connection_init, then sends a keep-alive every 20 ms and nothing
// else until the client goes.
func keepAliveServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{GraphQLWS}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		if _, _, err := conn.ReadMessage(); err != nil { // connection_init
			return
		}
		if err := conn.WriteJSON(map[string]string{"type": "connection_ack"}); err != nil {
			return
		}
		go func() { // reads until the client closes, so that writes below then fail
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for {
			if err := conn.WriteJSON(map[string]string{"type": "ka"}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// Keep-alives do not extend Next's timeout: it bounds the whole wait.
func TestNextTimesOutThroughKeepAlives(t *testing.T) {
	c, err := Dial(t.Context(), keepAliveServer(t), GraphQLWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := nextWithin(t, c, 200*time.Millisecond); err == nil {
		t.Error("Next returned a result; the server sent only keep-alives")
	}
}

// nextWithin is c.Next(timeout)'s error; it fails t if Next has not returned after 5s.
func nextWithin(t *testing.T, c *Client, timeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := c.Next(timeout)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		_ = c.Close() // ends the read
		err := <-done
		t.Fatalf("Next(%s) still waited after 5s, until the connection was closed (%v)", timeout, err)
		return nil
	}
}

// A negative timeout, what is left of a deadline that has passed, is over at once: it is not
// "no timeout".
func TestNextWithANegativeTimeoutReturnsAtOnce(t *testing.T) {
	c, err := Dial(t.Context(), keepAliveServer(t), GraphQLWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := nextWithin(t, c, -time.Millisecond); err == nil {
		t.Error("Next(-1ms) returned a result")
	}
}
