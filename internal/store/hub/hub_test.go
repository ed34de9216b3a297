package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	url   string
	store *eventstore.Store
	hub   *hub.Hub
}

func start(t *testing.T, opts hub.Options) *fixture {
	t.Helper()
	return startWith(t, opts, nil)
}

// startWith is start with an observer of the store's work.
func startWith(t *testing.T, opts hub.Options, observer eventstore.Observer) *fixture {
	t.Helper()
	return startOn(t, dbtest.URL(t), opts, observer)
}

// startOn is startWith on the database at url, which another fixture (another server process's
// parts) may share.
func startOn(t *testing.T, url string, opts hub.Options, observer eventstore.Observer) *fixture {
	t.Helper()
	pool := dbtest.PoolFor(t, url, 10)
	var h *hub.Hub
	store := eventstore.New(pool, eventstore.Options{Appended: func(c []string) { h.Appended(c) }, Observer: observer})
	h = hub.New(pool, store, opts, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{url: url, store: store, hub: h}
}

func (f *fixture) append(t *testing.T, stream string, n int) []eventstore.Position {
	t.Helper()
	out, err := f.tryAppend(stream, n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryAppend is append for goroutines other than the test's, which must not call t.Fatal: it
// returns the error instead.
func (f *fixture) tryAppend(stream string, n int) ([]eventstore.Position, error) {
	var out []eventstore.Position
	for range n {
		res, err := f.store.Append(context.Background(), stream, eventstore.Any(), []eventstore.EventData{{Type: "T", Data: json.RawMessage(`{}`)}})
		if err != nil {
			return out, err
		}
		out = append(out, res.Position)
	}
	return out, nil
}

func receive(t *testing.T, sub *hub.Subscription, n int) []eventstore.Position {
	t.Helper()
	var got []eventstore.Position
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription ended after %d of %d: %v", len(got), n, sub.Err())
			}
			got = append(got, e.Position)
		case <-timeout:
			t.Fatalf("%d of %d events after 20s", len(got), n)
		}
	}
	return got
}

func TestLiveSubscriberGetsNewEvents(t *testing.T) {
	t.Parallel()
	f := start(t, hub.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := f.hub.Subscribe(ctx, nil, hub.Filter{Category: "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := f.append(t, "x-1", 5)
	f.append(t, "y-1", 2)
	got := receive(t, sub, 5)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// While nobody listens the feed skips ahead without reading; a subscriber that comes later gets
// only what is appended after it subscribed.
func TestFeedSkipsAheadWhileNobodyListens(t *testing.T) {
	t.Parallel()
	reads := &readCounter{}
	f := startWith(t, hub.Options{}, reads)
	old := f.append(t, "z-1", 20)
	deadline := time.Now().Add(20 * time.Second)
	for f.hub.Stats().Last.Compare(old[len(old)-1]) < 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the feed never passed the appends made with no subscriber: at %v", f.hub.Stats().Last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := reads.events.Load(); n != 0 {
		t.Errorf("with no subscriber the feed read %d events", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := f.hub.Subscribe(ctx, nil, hub.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := f.append(t, "z-1", 1)
	if got := receive(t, sub, 1); got[0] != want[0] {
		t.Errorf("a late subscriber's first event is at %v, want the new one at %v", got[0], want[0])
	}
}

// A subscriber that falls a whole buffer behind is not waited for and not dropped: it reads on
// from the table, and gets every event once, in order; a fast one is not held up.
func TestSlowSubscriberReadsOnFromTheTable(t *testing.T) {
	t.Parallel()
	f := start(t, hub.Options{Buffer: 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := f.hub.Subscribe(ctx, nil, hub.Filter{Category: "x"}) // not read until the end
	if err != nil {
		t.Fatal(err)
	}
	fast, err := f.hub.Subscribe(ctx, nil, hub.Filter{Category: "x"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []eventstore.Position)
	go func() { done <- receiveQuiet(fast, 60) }()
	want := f.append(t, "x-1", 60)
	if got := <-done; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fast subscriber got %v, want %v", got, want)
	}
	if got := receive(t, slow, 60); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slow subscriber got %v, want %v", got, want)
	}
	if st := f.hub.Stats(); st.Lagged < 1 {
		t.Errorf("stats %+v: the slow subscriber never fell behind; the test proves nothing", st)
	}
	// Caught up, it is live again.
	more := f.append(t, "x-2", 3)
	if got := receive(t, slow, 3); fmt.Sprint(got) != fmt.Sprint(more) {
		t.Errorf("slow subscriber then got %v, want %v", got, more)
	}
}

// Subscriptions end when the hub stops.
func TestSubscriptionsEndWhenTheHubStops(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 4)
	store := eventstore.New(pool, eventstore.Options{})
	h := hub.New(pool, store, hub.Options{}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	sub, err := h.Subscribe(context.Background(), nil, hub.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	select {
	case <-sub.Dropped():
	case <-time.After(10 * time.Second):
		t.Fatal("subscription not ended by the hub's stop")
	}
	for range sub.C {
	}
	if !errors.Is(sub.Err(), hub.ErrStopped) {
		t.Errorf("ended with %v, want ErrStopped", sub.Err())
	}
}

func receiveQuiet(sub *hub.Subscription, n int) []eventstore.Position {
	var got []eventstore.Position
	for len(got) < n {
		select {
		case e, ok := <-sub.C:
			if !ok {
				return got
			}
			got = append(got, e.Position)
		case <-time.After(20 * time.Second):
			return got
		}
	}
	return got
}

// Appends announce themselves with NOTIFY, coalesced: at most one per NotifyEvery, however many
// appends commit in between.
func TestNotificationsAreCoalesced(t *testing.T) {
	t.Parallel()
	f := start(t, hub.Options{NotifyEvery: 20 * time.Millisecond})
	listener, err := pgx.Connect(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = listener.Close(context.Background()) }()
	if _, err := listener.Exec(context.Background(), "LISTEN "+hub.Channel); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	var writers errgroup.Group
	for w := range 8 {
		writers.Go(func() error {
			_, err := f.tryAppend(fmt.Sprintf("n-%d", w), 25)
			return err
		})
	}
	if err := writers.Wait(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(started)
	notes := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := listener.WaitForNotification(ctx)
		cancel()
		if err != nil {
			break
		}
		notes++
	}
	limit := int(elapsed/(20*time.Millisecond)) + 2
	if notes == 0 || notes > limit {
		t.Errorf("%d notifications for 200 appends in %s, want 1 to %d", notes, elapsed, limit)
	}
	t.Logf("%d notifications for 200 appends in %s", notes, elapsed)
}

// readCounter counts the events the store's reads return.
type readCounter struct{ events atomic.Int64 }

func (*readCounter) Appended(int, time.Duration, error) {}
func (c *readCounter) EventsRead(n int)                 { c.events.Add(int64(n)) }

// A subscription with a query gets exactly the events matching it, the stored ones first, then
// the live ones, AND'd with its other filters.
func TestQuerySubscriptionCatchesUpThenFollows(t *testing.T) {
	t.Parallel()
	f := start(t, hub.Options{Batch: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tagged := func(stream, typ string, tags ...string) eventstore.Position {
		res, err := f.store.Append(ctx, stream, eventstore.Any(), []eventstore.EventData{{Type: typ, Data: json.RawMessage(`{}`), Tags: tags}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Position
	}
	q := eventstore.Query{Items: []eventstore.QueryItem{{Tags: []string{"course:1"}}, {Types: []string{"CourseDefined"}}}}
	var want []eventstore.Position
	for i := range 5 {
		want = append(want, tagged("course-1", "StudentSubscribed", "course:1", fmt.Sprintf("student:%d", i)))
		tagged("course-2", "StudentSubscribed", "course:2")
		if i == 2 {
			want = append(want, tagged("course-3", "CourseDefined", "course:3"))
		}
		tagged("x-1", "CourseDefined") // another category
	}
	sub, err := f.hub.Subscribe(ctx, &eventstore.Position{}, hub.Filter{Category: "course", Query: &q})
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, sub, len(want))
	tagged("course-2", "StudentSubscribed", "course:2")
	want = append(want, tagged("course-1", "StudentLeft", "course:1", "student:0"))
	got = append(got, receive(t, sub, 1)...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	select {
	case e := <-sub.C:
		t.Errorf("got %s %s %q, which does not match", e.Position, e.Type, e.Tags)
	default:
	}
}

// A process's notification names the categories it appended, and reaches the other processes'
// Notified; a process does not pass its own on (its appends woke it already).
func TestNotificationsNameCategoriesAndSkipTheSender(t *testing.T) {
	t.Parallel()
	heard := func() (chan []string, func([]string)) {
		ch := make(chan []string, 100)
		return ch, func(c []string) { ch <- c }
	}
	aHeard, aNotified := heard()
	bHeard, bNotified := heard()
	var aAll atomic.Int64 // every notification a heard, its own included
	a := start(t, hub.Options{Notified: aNotified, Heard: func() { aAll.Add(1) }})
	b := startOn(t, a.url, hub.Options{Notified: bNotified}, nil)
	next := func(who string, ch chan []string) []string {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(20 * time.Second):
			t.Fatalf("%s heard nothing in 20s", who)
			return nil
		}
	}
	// A listener may start after the other's first NOTIFY: the other appends until it hears.
	appendUntilHeard := func(from *fixture, stream, who string, heard chan []string) []string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			from.append(t, stream, 1)
			select {
			case got := <-heard:
				return got
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatalf("%s heard none of the appends to %s in 20s", who, stream)
		return nil
	}
	got := appendUntilHeard(a, "cart-1", "b", bHeard)
	if !slices.Equal(got, []string{"cart"}) {
		t.Errorf("b heard %q, want [cart]", got)
	}
	// a's own notifications must not be passed on: what it hears is b's.
	got = appendUntilHeard(b, "invoice-1", "a", aHeard)
	if !slices.Equal(got, []string{"invoice"}) {
		t.Errorf("a heard %q first, want b's [invoice]: its own notifications must not be passed on", got)
	}
	for len(aHeard) > 0 { // more of b's invoice notifications, from the loop
		if got := <-aHeard; !slices.Equal(got, []string{"invoice"}) {
			t.Errorf("a heard %q, want only b's [invoice]", got)
		}
	}
	// Both listen now. Notifications reach every listener in commit order, and a sends its
	// NOTIFY after its append returns: once b has heard a's [memo], b appends, and a, hearing
	// b's [ledger], has heard (Heard) and skipped (not Notified) its own [memo] before it.
	// Late notifications of b's [invoice] appends above may still come first.
	before := aAll.Load()
	a.append(t, "memo-1", 1)
	for got := next("b", bHeard); !slices.Equal(got, []string{"memo"}); got = next("b", bHeard) {
		if !slices.Equal(got, []string{"cart"}) { // late ones of a's appends above
			t.Errorf("b heard %q, want a's [memo]", got)
		}
	}
	b.append(t, "ledger-1", 1)
	for got := next("a", aHeard); !slices.Equal(got, []string{"ledger"}); got = next("a", aHeard) {
		if !slices.Equal(got, []string{"invoice"}) {
			t.Errorf("a heard %q, want b's [ledger]: its own [memo] must not be passed on", got)
		}
	}
	if n := aAll.Load() - before; n < 2 {
		t.Errorf("Heard was called %d times on a for its own append and b's, want 2 or more", n)
	}
	// An older server's notification, with an empty payload, means any category.
	conn, err := pgx.Connect(context.Background(), a.url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(context.Background(), "SELECT pg_notify($1, '')", hub.Channel); err != nil {
		t.Fatal(err)
	}
	for {
		got := next("b", bHeard)
		if got == nil {
			break
		}
		if !slices.Equal(got, []string{"cart"}) {
			t.Fatalf("b heard %q, want nil (any category)", got)
		}
	}
}

// A live subscription (no after) starts at the present even right after appends made while
// nobody listened, which the idle feed skips only now and then: its first event is the first
// one appended after it subscribed. "The present" is the horizon, which other transactions
// anywhere on the cluster hold back; each round waits until it has passed the appends, as it
// does at once on a quiet cluster.
func TestLiveSubscriptionRightAfterIdleAppendsStartsNow(t *testing.T) {
	t.Parallel()
	f := start(t, hub.Options{})
	for round := range 5 {
		old := f.append(t, "idle-1", 3) // the feed may not have skipped past these yet
		for deadline := time.Now().Add(20 * time.Second); ; {
			h, err := f.store.Horizon(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if h.Compare(old[len(old)-1]) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the horizon did not pass %v in 20s", old[len(old)-1])
			}
			time.Sleep(5 * time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := f.hub.Subscribe(ctx, nil, hub.Filter{})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		want := f.append(t, "idle-1", 1)
		if got := receive(t, sub, 1); got[0] != want[0] {
			t.Errorf("round %d: the live subscription's first event is at %v, want the one appended after it at %v", round, got[0], want[0])
		}
		cancel()
		for range sub.C { // wait for it to end
		}
		for deadline := time.Now().Add(20 * time.Second); f.hub.Stats().Subscribers != 0; { // the feed idle again
			if time.Now().After(deadline) {
				t.Fatal("the ended subscription was still in the feed after 20s")
			}
			time.Sleep(time.Millisecond)
		}
	}
}
