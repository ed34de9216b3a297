package hub_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// counter is an Observer that counts what it is told.
type counter struct{ started, ended, behind atomic.Int64 }

func (c *counter) SubscriptionStarted() { c.started.Add(1) }
func (c *counter) SubscriptionEnded()   { c.ended.Add(1) }
func (c *counter) SubscriberBehind()    { c.behind.Add(1) }

// eventually waits up to 20s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A subscription counts in as soon as Subscribe returns, live or catching up, and out once when
// it ends; a subscriber the feed lets go of is counted as behind.
func TestObserverCountsSubscriptions(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	f := start(t, hub.Options{Buffer: 4, Observer: obs})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := f.hub.Subscribe(ctx, nil, hub.Filter{Category: "x"}) // not read until the end
	if err != nil {
		t.Fatal(err)
	}
	catching, err := f.hub.Subscribe(ctx, &eventstore.Position{}, hub.Filter{Category: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if n := obs.started.Load(); n != 2 {
		t.Fatalf("%d started once Subscribe returned, want 2", n)
	}
	f.append(t, "x-1", 30)
	receive(t, catching, 30)
	eventually(t, "the slow subscriber falls behind", func() bool { return obs.behind.Load() > 0 })
	if got, want := obs.behind.Load(), f.hub.Stats().Lagged; got != want {
		t.Errorf("behind %d, hub stats say %d", got, want)
	}
	receive(t, slow, 30)

	cancel()
	eventually(t, "both end", func() bool { return obs.ended.Load() == 2 })
	time.Sleep(50 * time.Millisecond) // a second count of either would show by now
	if s, e := obs.started.Load(), obs.ended.Load(); s != 2 || e != 2 {
		t.Errorf("started %d, ended %d; want 2 and 2", s, e)
	}
}

// Subscriptions the hub ends when it stops are counted out too.
func TestObserverCountsOutWhatTheHubStops(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 4)
	obs := &counter{}
	h := hub.New(pool, eventstore.New(pool, eventstore.Options{}), hub.Options{Observer: obs}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	sub, err := h.Subscribe(context.Background(), nil, hub.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	for range sub.C {
	}
	if !errors.Is(sub.Err(), hub.ErrStopped) {
		t.Fatalf("ended with %v, want ErrStopped", sub.Err())
	}
	eventually(t, "the stopped subscription counted out", func() bool { return obs.ended.Load() == 1 })
	if s := obs.started.Load(); s != 1 {
		t.Errorf("started %d, want 1", s)
	}
}
