package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// The slow-client settings of TestSlowClients' server: short, so that the test waits little.
const (
	slowReadTimeout = 300 * time.Millisecond
	slowIdleTimeout = 500 * time.Millisecond
	slowHeaderBytes = 8192
	// closeBound is how long a connection the server should cut off may stay open at most.
	closeBound = 5 * time.Second
)

// Slow clients are cut off and cost the server only their connection: a body that never
// arrives, headers that trickle in, a keep-alive connection left idle, headers too large; a
// WebSocket subscription, which sits quiet between events for as long as it likes, is not.
func TestSlowClients(t *testing.T) {
	verifyNoLeaks(t)
	srv := startServeOn(t, dbtest.URL(t), "--read-timeout", slowReadTimeout.String(),
		"--idle-timeout", slowIdleTimeout.String(), "--max-header-bytes", fmt.Sprint(slowHeaderBytes))
	a := srv.addr
	// Every GraphQL request of this test goes on a connection of its own: a kept-alive one
	// could be reused at the very moment the server closes it for being idle, and a POST that
	// meets a closing connection is not retried.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	query := func(t *testing.T, q string, vars map[string]any) gqlResponse {
		t.Helper()
		_, r := gqlVia(t, fresh, a, "", q, vars)
		return r
	}
	appendOne := func(t *testing.T, stream, typ string) string {
		t.Helper()
		var res struct{ Position string }
		ok(t, query(t, `mutation($s: String!, $t: String!) { appendEvents(streamId: $s, events: [{type: $t, data: {}}]) { position } }`,
			map[string]any{"s": stream, "t": typ}), "appendEvents", &res)
		return res.Position
	}

	t.Run("a body that never arrives", func(t *testing.T) {
		// Ten clients send the headers of a POST with a Content-Length, then nothing.
		const n = 10
		start := time.Now()
		results := make([]chan closed, n)
		for i := range results {
			conn := dialRaw(t, a)
			if _, err := fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"query\":", a); err != nil {
				t.Fatal(err)
			}
			results[i] = make(chan closed, 1)
			go func() { results[i] <- readUntilClosed(conn, start) }()
		}
		// Meanwhile the server answers another client.
		r := query(t, `{ __typename }`, nil)
		answered := time.Since(start)
		if len(r.Errors) > 0 || string(r.Data["__typename"]) != `"Query"` {
			t.Errorf("a query while ten bodies were stalled: %s %+v", r.Data["__typename"], r.Errors)
		}
		for i, res := range results {
			c := <-res
			if c.err != nil {
				t.Errorf("stalled body %d: %v", i, c.err)
				continue
			}
			if c.after < slowReadTimeout {
				t.Errorf("stalled body %d: cut off after %s, before the read timeout of %s", i, c.after, slowReadTimeout)
			}
			if c.after < answered {
				t.Errorf("stalled body %d: cut off after %s, before the other client was answered (%s)", i, c.after, answered)
			}
			// The client is told why, then hung up on.
			if !strings.HasPrefix(c.got, "HTTP/1.1 408 ") || !strings.Contains(c.got, `"code":"TIMEOUT"`) {
				t.Errorf("stalled body %d: answer %q, want 408 with code TIMEOUT", i, c.got)
			}
		}
	})

	t.Run("headers that trickle in", func(t *testing.T) {
		// Part of the request line at once, then a byte every 50 ms: each byte well within the
		// timeout, the headers never complete. The deadline counts from the start, so they are
		// cut off.
		start := time.Now()
		conn := dialRaw(t, a)
		if _, err := io.WriteString(conn, "POST /que"); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var trickling sync.WaitGroup
		trickling.Go(func() {
			for _, b := range []byte("ry HTTP/1.1\r\nHost: slow\r\nX-Slow: " + strings.Repeat("z", 1000)) {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{b}); err != nil {
					return // the server hung up
				}
			}
		})
		defer trickling.Wait()
		defer close(stop)
		c := readUntilClosed(conn, start)
		if c.err != nil {
			t.Fatalf("trickling headers: %v", c.err)
		}
		if c.after < slowReadTimeout {
			t.Errorf("trickling headers were cut off after %s, before the read timeout of %s", c.after, slowReadTimeout)
		}
		if strings.HasPrefix(c.got, "HTTP/1.1 2") {
			t.Errorf("trickling headers were answered %q", c.got)
		}
	})

	t.Run("a WebSocket outlives both timeouts", func(t *testing.T) {
		start := appendOne(t, "slow-marker-1", "Start")
		subs := []*subscriber{
			subscribe(t, a, wsclient.TransportWS, map[string]any{"after": start, "category": "slowws"}),
			subscribe(t, a, wsclient.GraphQLWS, map[string]any{"after": start, "category": "slowws"}),
		}
		appendOne(t, "slowws-1", "Before")
		for _, s := range subs {
			s.waitFor(t, 1, 20*time.Second)
		}
		// The connections sit quiet for longer than the read timeout and the idle timeout
		// together; passing time is what is tested here.
		time.Sleep(2 * (slowReadTimeout + slowIdleTimeout))
		appendOne(t, "slowws-1", "After")
		for _, s := range subs {
			got := s.waitFor(t, 2, 20*time.Second)
			if got[1].Type != "After" {
				t.Errorf("%s: second event %+v, want the one appended after the wait", s.client.Subprotocol(), got[1])
			}
		}
	})

	t.Run("an idle keep-alive connection", func(t *testing.T) {
		conn := dialRaw(t, a)
		if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", a); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(closeBound))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /healthz: %s, close %v; want 200 on a connection kept alive", resp.Status, resp.Close)
		}
		idle := time.Now()
		c := readUntilClosed(readerConn{Conn: conn, r: br}, idle)
		if c.err != nil {
			t.Fatalf("idle connection: %v", c.err)
		}
		// The server starts counting a little before the client has read the answer.
		if c.after < slowIdleTimeout*3/4 {
			t.Errorf("the idle connection was closed after %s, before the idle timeout of %s", c.after, slowIdleTimeout)
		}
		if c.got != "" {
			t.Errorf("the idle connection received %q", c.got)
		}
	})

	t.Run("headers too large", func(t *testing.T) {
		status := func(pad int) string {
			conn := dialRaw(t, a)
			// Written while the answer is read: the server may answer before it has read all.
			go func() {
				_, _ = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\n\r\n", a, strings.Repeat("p", pad))
			}()
			_ = conn.SetReadDeadline(time.Now().Add(closeBound))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				t.Fatalf("headers with %d bytes of padding: no answer: %v", pad, err)
			}
			return strings.TrimSpace(line)
		}
		if got := status(slowHeaderBytes / 2); got != "HTTP/1.1 200 OK" {
			t.Errorf("headers within --max-header-bytes: %q, want 200", got)
		}
		if got := status(8 * slowHeaderBytes); got != "HTTP/1.1 431 Request Header Fields Too Large" {
			t.Errorf("headers of 8 times --max-header-bytes: %q, want 431", got)
		}
	})

	// Still serving, the database included.
	var p []struct{ Name string }
	ok(t, query(t, `{ projections { name } }`, nil), "projections", &p)
	if len(p) != len(readModelNames()) {
		t.Errorf("projections after the slow clients: %+v, want %v", p, readModelNames())
	}
}

// dialRaw opens a TCP connection to addr, closed at the test's end.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// closed is how a connection the server should cut off ended.
type closed struct {
	got   string        // what the server sent before it hung up
	after time.Duration // since the start given to readUntilClosed
	err   error         // not nil when the connection was not closed within closeBound
}

// readUntilClosed reads conn until the server closes it (end of stream or a reset), for at most
// closeBound after start.
func readUntilClosed(conn net.Conn, start time.Time) closed {
	_ = conn.SetReadDeadline(start.Add(closeBound))
	got, err := io.ReadAll(conn)
	c := closed{got: string(got), after: time.Since(start)}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.err = fmt.Errorf("not closed by the server within %s (read: %w; received %q)", closeBound, err, got)
	}
	return c
}

// readerConn is a connection whose reads go through a bufio.Reader that has read from it.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
