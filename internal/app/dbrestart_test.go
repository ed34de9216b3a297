package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/platform/pgserver"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// restartablePG is a private cluster that keeps its data directory and its port across a stop
// and a start, so that a server pointed at it sees PostgreSQL go away and come back at the same
// address.
type restartablePG struct {
	opts pgserver.Options
	srv  *pgserver.Server // the one running, or the last one stopped
}

// startRestartablePG starts a cluster on a free port; the test's end stops whichever runs then.
// Call it before starting a server on it: cleanups run last-registered first, so the server
// stops before its database does.
func startRestartablePG(t *testing.T) *restartablePG {
	t.Helper()
	_, portText, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	p := &restartablePG{opts: pgserver.Options{Dir: dbtest.TempDir(t), Port: port, Settings: map[string]string{"fsync": "off"}}}
	p.start(t)
	t.Cleanup(func() { _ = p.srv.Stop(context.Background()) })
	return p
}

// pgControlTimeout bounds a start or a stop of the test's cluster, so that one that stalls fails
// its test instead of holding the package until go test's timeout (Stop escalates then).
const pgControlTimeout = 2 * time.Minute

func (p *restartablePG) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), pgControlTimeout)
	defer cancel()
	srv, err := pgserver.Start(ctx, p.opts)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = srv
}

// stop shuts PostgreSQL down as an operator's restart does (fast: sessions are cut).
func (p *restartablePG) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), pgControlTimeout)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// url is the same for every start.
func (p *restartablePG) url() string { return p.srv.URL(pgserver.Superuser) }

const outageAppendM = `mutation($s: String!, $e: [EventInput!]!) { appendEvents(streamId: $s, events: $e) { position } }`

// outageAck is an append the server acknowledged.
type outageAck struct{ id, stream, position string }

// outageWriters append over HTTP until stopped, one event at a time with an id of the client's,
// and send an append that failed with UNAVAILABLE again as it was (same id) until it succeeds.
type outageWriters struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu          sync.Mutex
	acks        []outageAck
	unavailable int      // UNAVAILABLE answers with retryable true
	unexpected  []string // any other error
}

// startOutageWriters starts n writers on streams dbr-1 to dbr-4; the test's end stops them.
func startOutageWriters(t *testing.T, addr string, n int) *outageWriters {
	t.Helper()
	w := &outageWriters{stop: make(chan struct{})}
	for i := range n {
		w.wg.Go(func() { w.run(t, addr, i) })
	}
	t.Cleanup(w.halt)
	return w
}

// halt stops the writers once each has its append in hand acknowledged.
func (w *outageWriters) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

func (w *outageWriters) run(t *testing.T, addr string, writer int) {
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		id := uuid.NewString()
		stream := fmt.Sprintf("dbr-%d", (writer+i)%4+1)
		vars := map[string]any{"s": stream, "e": []any{map[string]any{"id": id, "type": "Tick", "data": map[string]any{"writer": writer, "i": i}}}}
		if !w.appendUntilAcked(t, addr, id, stream, vars) {
			return
		}
		time.Sleep(5 * time.Millisecond) // pacing: load, not a flood the race detector chokes on
	}
}

// appendUntilAcked sends one append until the server acknowledges it; it reports false (and
// fails t) when that does not happen within a minute.
func (w *outageWriters) appendUntilAcked(t *testing.T, addr, id, stream string, vars map[string]any) bool {
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := gql(t, addr, outageAppendM, vars) // a failed request fails t: the server must stay up
		if len(r.Errors) == 0 {
			var res struct{ Position string }
			if err := json.Unmarshal(r.Data["appendEvents"], &res); err != nil || res.Position == "" {
				t.Errorf("append %s to %s: no position in %s (%v)", id, stream, r.Data["appendEvents"], err)
				return false
			}
			w.mu.Lock()
			w.acks = append(w.acks, outageAck{id: id, stream: stream, position: res.Position})
			w.mu.Unlock()
			return true
		}
		w.mu.Lock()
		if len(r.Errors) == 1 && r.code() == "UNAVAILABLE" && r.Errors[0].Extensions["retryable"] == true {
			w.unavailable++
		} else {
			w.unexpected = append(w.unexpected, fmt.Sprintf("%+v", r.Errors))
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Errorf("append %s to %s still failing after 60s: %+v", id, stream, r.Errors)
			return false
		}
		time.Sleep(20 * time.Millisecond) // paces retries during the outage
	}
}

func (w *outageWriters) counts() (acked, unavailable int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks), w.unavailable
}

// waitUntil polls cond until it holds, failing t after within.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PostgreSQL stops under a loaded server and starts again on the same data and port. The
// server keeps running; requests during the outage fail with UNAVAILABLE, retryable, and
// nothing else; appends retried with their event ids are stored once; subscribers keep their
// connections, one even subscribes during the outage, and each receives every event of its
// scope once, in order.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	pg := startRestartablePG(t)
	srv := startServeOn(t, pg.url())
	addr := srv.addr
	client := &http.Client{Timeout: 5 * time.Second}
	status := func(path string) int {
		t.Helper()
		code, err := get(t.Context(), client, "http://"+addr+path)
		if err != nil {
			t.Fatalf("GET %s: %v (the server must keep answering)", path, err)
		}
		return code
	}

	start := appendVia(t, addr, "marker-1", "Start")
	all := subscribe(t, addr, wsclient.TransportWS, map[string]any{"after": start})
	one := subscribe(t, addr, wsclient.GraphQLWS, map[string]any{"after": start, "streamId": "dbr-1"})
	w := startOutageWriters(t, addr, 4)
	waitUntil(t, "40 appends before the outage", 30*time.Second, func() bool { n, _ := w.counts(); return n >= 40 })
	all.waitFor(t, 40, 30*time.Second)
	one.waitFor(t, 1, 30*time.Second)

	pg.stop(t)
	down := time.Now()
	// A subscription made now catches up from the log as soon as there is one again.
	late := subscribe(t, addr, wsclient.TransportWS, map[string]any{"after": start})
	r := gql(t, addr, `query { stream(id: "dbr-1") { version } }`, nil)
	if len(r.Errors) != 1 || r.code() != "UNAVAILABLE" || r.Errors[0].Extensions["retryable"] != true {
		t.Errorf("a read during the outage: %+v, want UNAVAILABLE with retryable true", r.Errors)
	}
	// Down for a few seconds: the pool, the projectors, the feed and its LISTEN connection all
	// fail and try again meanwhile.
	waitUntil(t, "appends answered UNAVAILABLE and /readyz not ready, for 5s", 30*time.Second, func() bool {
		_, unavailable := w.counts()
		return unavailable >= 20 && status("/readyz") == http.StatusServiceUnavailable && time.Since(down) >= 5*time.Second
	})
	if code := status("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz during the outage: %d, want 200", code)
	}
	select {
	case err := <-srv.result:
		srv.result <- err // for the cleanup's stop
		t.Fatalf("serve returned during the outage: %v; stderr:\n%s", err, srv.stderr.String())
	default:
	}

	pg.start(t)
	waitUntil(t, "/readyz ready after the restart", 30*time.Second, func() bool { return status("/readyz") == http.StatusOK })
	before, _ := w.counts()
	waitUntil(t, "40 appends after the restart", 30*time.Second, func() bool { n, _ := w.counts(); return n >= before+40 })
	w.halt()

	w.mu.Lock()
	acks, unavailable, unexpected := w.acks, w.unavailable, w.unexpected
	w.mu.Unlock()
	t.Logf("%d appends acknowledged, %d UNAVAILABLE answers retried", len(acks), unavailable)
	if len(unexpected) > 0 {
		t.Errorf("%d answers other than UNAVAILABLE, retryable; the first: %s", len(unexpected), unexpected[0])
	}

	// The log holds every acknowledged event once, and nothing else; streams have no gaps.
	conn, err := pgx.Connect(t.Context(), pg.url())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rows, err := conn.Query(t.Context(), `SELECT event_id::text, stream_id, version FROM events WHERE stream_id LIKE 'dbr-%' ORDER BY stream_id, version`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	versions := map[string]int64{}
	for rows.Next() {
		var id, stream string
		var version int64
		if err := rows.Scan(&id, &stream, &version); err != nil {
			t.Fatal(err)
		}
		stored[id]++
		if versions[stream]++; versions[stream] != version {
			t.Errorf("stream %s: version %d where %d was due", stream, version, versions[stream])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	streamOf := map[string]string{} // position → stream
	for _, a := range acks {
		if stored[a.id] != 1 {
			t.Errorf("acknowledged event %s is stored %d times", a.id, stored[a.id])
		}
		streamOf[a.position] = a.stream
	}
	if len(stored) != len(acks) {
		t.Errorf("%d events stored, %d acknowledged", len(stored), len(acks))
	}

	// Subscribers: every event of their scope, once, in the global order.
	want := positionsAtLeast(t, addr, start, "", len(acks))
	var wantOne []string
	for _, p := range want {
		s, ok := streamOf[p]
		if !ok {
			t.Errorf("the log holds an event at %s that no append acknowledged", p)
		}
		if s == "dbr-1" {
			wantOne = append(wantOne, p)
		}
	}
	checkExactlyOnce(t, "subscriber to all events", all.waitFor(t, len(want), 30*time.Second), want)
	checkExactlyOnce(t, "subscriber since the outage", late.waitFor(t, len(want), 30*time.Second), want)
	checkExactlyOnce(t, "subscriber to dbr-1", one.waitFor(t, len(wantOne), 30*time.Second), wantOne)
}
