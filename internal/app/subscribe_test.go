package app

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// liveEvent is an Event as subscriptions deliver it here.
type liveEvent struct {
	StreamID string `json:"streamId"`
	Version  int    `json:"version"`
	Type     string `json:"type"`
	Position string `json:"position"`
}

const eventsSub = `subscription($after: String, $category: String, $streamId: String) {
	events(after: $after, category: $category, streamId: $streamId) { streamId version type position }
}`

// subscriber collects what one subscription delivers, in a goroutine.
type subscriber struct {
	client *wsclient.Client
	mu     sync.Mutex
	got    []liveEvent
	err    error
	done   chan struct{}
}

// subscribe opens a connection with proto and subscribes to events with vars.
func subscribe(t *testing.T, addr, proto string, vars map[string]any) *subscriber {
	t.Helper()
	s, err := trySubscribe(t, addr, proto, vars)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trySubscribe is subscribe for goroutines other than the test's, which must not call t.Fatal:
// it returns the error instead.
func trySubscribe(t *testing.T, addr, proto string, vars map[string]any) (*subscriber, error) {
	c, err := wsclient.Dial(t.Context(), "ws://"+addr+"/query", proto, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe("1", eventsSub, vars); err != nil {
		_ = c.Close()
		return nil, err
	}
	s := &subscriber{client: c, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			r, err := c.Next(0)
			if err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			if len(r.Errors) > 0 && string(r.Errors) != "null" {
				s.mu.Lock()
				s.err = fmt.Errorf("subscription error: %s", r.Errors)
				s.mu.Unlock()
				return
			}
			if r.Done {
				return
			}
			var d struct{ Events liveEvent }
			if err := json.Unmarshal(r.Data, &d); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.got = append(s.got, d.Events)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-s.done })
	return s, nil
}

// waitFor waits until the subscriber has n events, or fails.
func (s *subscriber) waitFor(t *testing.T, n int, within time.Duration) []liveEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		got, err := append([]liveEvent(nil), s.got...), s.err
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if err != nil {
			t.Fatalf("subscription ended after %d of %d events: %v", len(got), n, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription has %d of %d events after %s", len(got), n, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appendVia appends one event to stream through the server's GraphQL API and returns its
// position.
func appendVia(t *testing.T, addr, stream, typ string) string {
	t.Helper()
	r := gql(t, addr, `mutation($s: String!, $t: String!) { appendEvents(streamId: $s, events: [{type: $t, data: {}}]) { position } }`, map[string]any{"s": stream, "t": typ})
	var res struct{ Position string }
	if len(r.Errors) > 0 || json.Unmarshal(r.Data["appendEvents"], &res) != nil {
		t.Errorf("append to %s: %+v", stream, r.Errors)
	}
	return res.Position
}

// checkExactlyOnce checks that got is want, in order: every event once, nothing else.
func checkExactlyOnce(t *testing.T, name string, got []liveEvent, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", name, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i].Position != want[i] {
			t.Errorf("%s: event %d is %s (%s@%d), want %s", name, i, got[i].Position, got[i].StreamID, got[i].Version, want[i])
			return
		}
	}
}

// positionsAfter lists the positions of category's events after a position, in the global
// order, through allEvents.
func positionsAfter(t *testing.T, addr, after, category string) []string {
	t.Helper()
	var out []string
	for {
		var c struct {
			Edges    []struct{ Cursor string }
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
		ok(t, gql(t, addr, `query($a: String, $c: String) { allEvents(first: 1000, after: $a, category: $c) { edges { cursor } pageInfo { hasNextPage endCursor } } }`, map[string]any{"a": after, "c": category}), "allEvents", &c)
		for _, e := range c.Edges {
			out = append(out, e.Cursor)
		}
		after = c.PageInfo.EndCursor
		if !c.PageInfo.HasNextPage {
			return out
		}
	}
}

// positionsAtLeast is positionsAfter once it lists n events: the global order shows an event
// once every older transaction in the cluster has ended, and tests share the cluster.
func positionsAtLeast(t *testing.T, addr, after, category string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := positionsAfter(t, addr, after, category)
		if len(got) >= n {
			if len(got) > n {
				t.Errorf("the log holds %d events of category %s after %s, want %d", len(got), category, after, n)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log shows %d of %d events of category %s after 30s", len(got), n, category)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Subscribers that start before, during and after 8 concurrent writers each get every event
// exactly once, in the global order, over both subprotocols.
func TestSubscriptionsCatchUpThenGoLiveWithoutGapOrDuplicate(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	start := appendVia(t, a, "marker-1", "Start")

	before := []*subscriber{
		subscribe(t, a, wsclient.TransportWS, map[string]any{"after": start, "category": "load"}),
		subscribe(t, a, wsclient.GraphQLWS, map[string]any{"after": start, "category": "load"}),
		subscribe(t, a, wsclient.TransportWS, map[string]any{"category": "load"}), // live only
	}
	// Only an event that reaches the live-only subscriber proves it is registered: warm up
	// until one does.
	warm := 0
	for deadline := time.Now().Add(20 * time.Second); ; {
		appendVia(t, a, "load-0", "Warm")
		warm++
		before[2].mu.Lock()
		n := len(before[2].got)
		before[2].mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live-only subscription received nothing within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	const writers, perWriter = 8, 40
	var wg sync.WaitGroup
	var during []*subscriber
	var mu sync.Mutex
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				appendVia(t, a, fmt.Sprintf("load-%d", w+1), "Tick")
				if w == 0 && i == perWriter/2 {
					for _, proto := range []string{wsclient.TransportWS, wsclient.GraphQLWS} {
						s, err := trySubscribe(t, a, proto, map[string]any{"after": start, "category": "load"})
						if err != nil {
							t.Errorf("subscribe during the writes over %s: %v", proto, err)
							continue
						}
						mu.Lock()
						during = append(during, s)
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	after := []*subscriber{
		subscribe(t, a, wsclient.GraphQLWS, map[string]any{"after": start, "category": "load"}),
		subscribe(t, a, wsclient.TransportWS, map[string]any{"after": start, "category": "load"}),
	}
	// And some live events for everyone, after the late subscribers caught up.
	for _, s := range after {
		s.waitFor(t, warm+writers*perWriter, 30*time.Second)
	}
	for i := range 5 {
		appendVia(t, a, "load-9", fmt.Sprintf("Late%d", i))
	}

	want := positionsAtLeast(t, a, start, "load", warm+writers*perWriter+5)
	all := append(append(before[:2:2], during...), after...)
	for i, s := range all {
		checkExactlyOnce(t, fmt.Sprintf("subscriber %d (%s)", i, s.client.Subprotocol()), s.waitFor(t, len(want), 30*time.Second), want)
	}
	// The live-only one saw everything from its first event on.
	first := before[2].waitFor(t, 1, time.Second)[0]
	from := 0
	for from < len(want) && want[from] != first.Position {
		from++
	}
	live := before[2].waitFor(t, len(want)-from, 30*time.Second)
	checkExactlyOnce(t, "live-only subscriber", live, want[from:])
	if from >= warm {
		t.Errorf("the live-only subscriber's first event is not a warm-up event")
	}
}

// The order subscription pushes the state after each event, starting with the current one.
func TestOrderSubscriptionPushesEachState(t *testing.T) {
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	var u userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &u)
	var o orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": u.User.ID, "items": items("A", 2, "5.00")}), "createOrder", &o)

	c, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Subscribe("o", `subscription($id: ID!) { order(id: $id) { status version total customer { name } } }`, map[string]any{"id": o.Order.ID}); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		r, err := c.Next(20 * time.Second)
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("next: %v %s", err, r.Errors)
		}
		return string(r.Data)
	}
	if got := next(); got != `{"order":{"status":"PENDING","version":1,"total":"10.00","customer":{"name":"Ada"}}}` {
		t.Fatalf("first state %s", got)
	}
	ok(t, gql(t, a, payM, map[string]any{"id": o.Order.ID, "a": "10.00"}), "payOrder", &o)
	if got := next(); got != `{"order":{"status":"PAID","version":2,"total":"10.00","customer":{"name":"Ada"}}}` {
		t.Fatalf("after payOrder %s", got)
	}
	ok(t, gql(t, a, shipM, map[string]any{"id": o.Order.ID}), "shipOrder", &o)
	if got := next(); got != `{"order":{"status":"SHIPPED","version":3,"total":"10.00","customer":{"name":"Ada"}}}` {
		t.Fatalf("after shipOrder %s", got)
	}

	// A user subscription, and an unknown order.
	if err := c.Subscribe("u", `subscription($id: ID!) { user(id: $id) { name status version } }`, map[string]any{"id": u.User.ID}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != `{"user":{"name":"Ada","status":"ACTIVE","version":1}}` {
		t.Fatalf("user %s", got)
	}
	ok(t, gql(t, a, `mutation($id: ID!) { deactivateUser(id: $id) { position } }`, map[string]any{"id": u.User.ID}), "deactivateUser", &struct{}{})
	if got := next(); got != `{"user":{"name":"Ada","status":"DEACTIVATED","version":2}}` {
		t.Fatalf("user after deactivation %s", got)
	}
	if err := c.Subscribe("x", `subscription { order(id: "0190b6a4-0000-7000-8000-000000000000") { status } }`, nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.Next(20 * time.Second)
	if err != nil || r.ID != "x" || !strings.Contains(string(r.Errors), "NOT_FOUND") {
		t.Fatalf("unknown order: %+v %v", r, err)
	}
}

// Subscriptions that end — stopped by the client, cut by a disconnect, or open when the server
// shuts down — leave no goroutine behind.
func TestSubscriptionsLeaveNothingBehind(t *testing.T) {
	verifyNoLeaks(t) // checked after the server below has stopped
	srv := startServeOn(t, dbtest.URL(t))
	a := srv.addr
	start := appendVia(t, a, "leak-1", "Start")
	time.Sleep(200 * time.Millisecond) // let the server's start-up goroutines settle
	base := runtime.NumGoroutine()

	stopped, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := wsclient.Dial(t.Context(), "ws://"+a+"/query", wsclient.GraphQLWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		vars := map[string]any{"after": start, "category": "leak"}
		if err := stopped.Subscribe(fmt.Sprint(i), eventsSub, vars); err != nil {
			t.Fatal(err)
		}
		if err := cut.Subscribe(fmt.Sprint(i), eventsSub, vars); err != nil {
			t.Fatal(err)
		}
	}
	appendVia(t, a, "leak-1", "Tick")
	for _, c := range []*wsclient.Client{stopped, cut} {
		for range 10 {
			if r, err := c.Next(20 * time.Second); err != nil || r.Data == nil {
				t.Fatalf("%s: %+v %v", c.Subprotocol(), r, err)
			}
		}
	}
	if n := runtime.NumGoroutine(); n < base+40 {
		t.Fatalf("%d goroutines with 20 subscriptions open, %d before: the check below would prove nothing", n, base)
	}
	for i := range 10 {
		if err := stopped.Stop(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = cut.NetConn().NetConn().Close() // no close frame: the connection just ends
	_ = stopped.Close()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 20s after every subscription ended, %d before they began", runtime.NumGoroutine(), base)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// One left open when the server stops: the shutdown ends it (verifyNoLeaks checks).
	open := subscribe(t, a, wsclient.TransportWS, map[string]any{"category": "leak"})
	if err := srv.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	select {
	case <-open.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a subscription was still open 10s after the server stopped")
	}
}
