package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// A subscriber on one replica receives what is written through another: NOTIFY is the signal
// between them, the table the source.
func TestSubscriberSeesWritesOfAnotherReplica(t *testing.T) {
	url := dbtest.URL(t)
	a, b := startServeOn(t, url), startServeOn(t, url)
	start := appendVia(t, b.addr, "marker-1", "Start")
	s := subscribe(t, a.addr, wsclient.TransportWS, map[string]any{"after": start, "category": "repl"})
	for i := range 30 {
		appendVia(t, b.addr, fmt.Sprintf("repl-%d", i%3), "Tick")
	}
	want := positionsAtLeast(t, b.addr, start, "repl", 30)
	checkExactlyOnce(t, "subscriber on the other replica", s.waitFor(t, len(want), 30*time.Second), want)
}

// terminateListeners ends the LISTEN connections of every server on the database at url and
// returns how many it ended.
func terminateListeners(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	err = conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = 'strata listener' AND datname = current_database()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The LISTEN connection is terminated while events flow: the server connects again and its
// subscriber misses nothing and sees nothing twice.
func TestListenConnectionTerminatedMidStream(t *testing.T) {
	url := dbtest.URL(t)
	a, b := startServeOn(t, url), startServeOn(t, url)
	start := appendVia(t, b.addr, "marker-1", "Start")
	s := subscribe(t, a.addr, wsclient.GraphQLWS, map[string]any{"after": start, "category": "term"})
	terminated := 0
	for i := range 60 {
		appendVia(t, b.addr, "term-1", "Tick") // written through b: a hears of it by NOTIFY or its poll
		if i%20 == 10 {
			terminated += terminateListeners(t, url)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if terminated < 3 {
		t.Fatalf("terminated %d listener connections, want at least 3 (one per try)", terminated)
	}
	want := positionsAtLeast(t, b.addr, start, "term", 60)
	checkExactlyOnce(t, "subscriber", s.waitFor(t, len(want), 30*time.Second), want)
	if !strings.Contains(a.stderr.String(), "listen connection lost") {
		t.Errorf("server a did not notice its LISTEN connection was lost; stderr:\n%s", a.stderr.String())
	}
}

// PostgreSQL itself restarts under a running server: subscribers keep their connection, and
// get every event written before and after, once.
func TestPostgresRestartUnderSubscribers(t *testing.T) {
	pg := startRestartablePG(t)
	url := pg.url()
	srv := startServeOn(t, url)
	start := appendVia(t, srv.addr, "marker-1", "Start")
	s := subscribe(t, srv.addr, wsclient.TransportWS, map[string]any{"after": start, "category": "restart"})
	for range 10 {
		appendVia(t, srv.addr, "restart-1", "Before")
	}
	s.waitFor(t, 10, 30*time.Second)

	pg.stop(t)
	pg.start(t)

	// The server's pool reconnects on its own; the first appends may fail until it has.
	written := 0
	for deadline := time.Now().Add(60 * time.Second); written < 10; {
		r := gql(t, srv.addr, `mutation { appendEvents(streamId: "restart-1", events: [{type: "After", data: {}}]) { position } }`, nil)
		if len(r.Errors) == 0 {
			written++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends still fail 60s after the restart: %+v", r.Errors)
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := positionsAtLeast(t, srv.addr, start, "restart", 20)
	checkExactlyOnce(t, "subscriber across the restart", s.waitFor(t, 20, 60*time.Second), want)
}

// A client that stops reading is disconnected; a fast one on the same server gets every event.
func TestStalledSubscriberIsDroppedFastOneKeepsUp(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url, "--subscriber-buffer", "16")
	a := srv.addr
	// A small receive buffer, set before the connection opens (so the TCP window stays small),
	// makes the server's writes back up after its own send buffer.
	small := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: (&net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		},
	}).DialContext}
	stalled, err := wsclient.DialWith(t.Context(), small, "ws://"+a+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stalled.Close() }()
	// Live only, so that it is in the feed: one warm-up event read proves it is registered.
	// It asks for data, so each event is a big message.
	if err := stalled.Subscribe("1", `subscription { events(category: "stall") { position data } }`, nil); err != nil {
		t.Fatal(err)
	}
	// Warm-up events go out every 50ms until the client has read one (a read that times out
	// would break the connection, so the client reads once, with a long deadline).
	warmDone := make(chan struct{})
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		for {
			appendVia(t, a, "stall-warm", "Warm")
			select {
			case <-warmDone:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	r, err := stalled.Next(20 * time.Second)
	close(warmDone)
	<-warmed
	if err != nil || r.Data == nil {
		t.Fatalf("the stalled subscriber never got its warm-up event: %+v %v", r, err)
	}
	start := appendVia(t, a, "marker-2", "Start") // after the warm-up events
	fast := subscribe(t, a, wsclient.GraphQLWS, map[string]any{"after": start, "category": "stall"})

	// Events big enough to fill the socket buffers between the server and the stalled client
	// (about 4 MB here) and its buffer soon, well before the server's pong timeout (20s) would
	// end the connection anyway. They are written straight to the store (as another replica
	// would, announcing them with NOTIFY): through GraphQL, under the race detector, 15 MB of
	// JSON takes longer than that timeout.
	pool := dbtest.PoolFor(t, url, 2)
	store := eventstore.New(pool, eventstore.Options{})
	data, err := json.Marshal(map[string]string{"pad": strings.Repeat("x", 256<<10)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		if _, err := store.Append(t.Context(), fmt.Sprintf("stall-%d", i%4), eventstore.Any(), []eventstore.EventData{{Type: "Big", Data: data}}); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), `SELECT pg_notify('strata_events', '')`); err != nil {
			t.Fatal(err)
		}
	}
	want := positionsAtLeast(t, a, start, "stall", n)
	checkExactlyOnce(t, "fast subscriber", fast.waitFor(t, n, 60*time.Second), want)

	// The server dropped the stalled one: reading now finds what was buffered, then the end.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(srv.stderr.String(), "subscriber dropped") {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled subscriber was not dropped; stderr:\n%s", srv.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Counted once, however many writes to the dead connection failed.
	waitMetric(t, "http://"+a+"/metrics", "strata_slow_consumers_dropped_total", 1)
	var got int
	for {
		r, err := stalled.Next(30 * time.Second)
		if err != nil {
			var closed *wsclient.ErrClosed
			// The close frame (4008) waits behind the data the client never read, so the
			// client usually sees the socket end instead (1006).
			if errors.As(err, &closed) && closed.Code != 4008 && closed.Code != websocket.CloseAbnormalClosure {
				t.Errorf("closed with %d %q, want 4008 or 1006", closed.Code, closed.Text)
			}
			break
		}
		if r.Data != nil {
			got++
		}
	}
	if got >= n {
		t.Errorf("the stalled subscriber received all %d events; it should have been cut off", got)
	}
	t.Logf("the stalled subscriber had %d of %d events buffered when it was dropped", got, n)
}

// Keep-alives: graphql-ws gets "ka" messages; graphql-transport-ws gets pings, stays up while
// it answers them with pongs, and is disconnected once it stops.
func TestWebSocketKeepAlives(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t), "--ws-keepalive", "200ms")
	dial := func(proto string) *websocket.Conn {
		t.Helper()
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{proto}}
		conn, resp, err := d.Dial("ws://"+srv.addr+"/query", nil)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteJSON(map[string]any{"type": "connection_init"}); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	// read reads messages for d, answering pings when pong is set; it returns how many of type
	// want it saw and the error that ended the connection, if any.
	read := func(conn *websocket.Conn, want string, d time.Duration, pong bool) (int, error) {
		seen := 0
		for start := time.Now(); time.Since(start) < d; {
			_ = conn.SetReadDeadline(time.Now().Add(d))
			var m struct{ Type string }
			if err := conn.ReadJSON(&m); err != nil {
				return seen, err
			}
			if m.Type == want {
				seen++
			}
			if m.Type == "ping" && pong {
				if err := conn.WriteJSON(map[string]any{"type": "pong"}); err != nil {
					return seen, err
				}
			}
		}
		return seen, nil
	}

	ws := dial(wsclient.GraphQLWS)
	defer func() { _ = ws.Close() }()
	if seen, err := read(ws, "ka", 1500*time.Millisecond, false); seen < 3 || err != nil {
		t.Errorf("graphql-ws: %d ka messages in 1.5s (%v), want one every 200ms", seen, err)
	}

	tws := dial(wsclient.TransportWS)
	defer func() { _ = tws.Close() }()
	if seen, err := read(tws, "ping", 1500*time.Millisecond, true); seen < 3 || err != nil {
		t.Errorf("graphql-transport-ws: %d pings in 1.5s while answering them (%v), want one every 200ms and the connection up", seen, err)
	}
	if _, err := read(tws, "ping", 3*time.Second, false); err == nil {
		t.Errorf("graphql-transport-ws: a client that stopped answering pings was not disconnected")
	}
}
