package replica_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/replica"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) ReadFallback(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[reason]++
}

func (c *counts) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[reason]
}

// closedPort returns an address of 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// A replica that cannot be reached is left alone for RetryAfter, and counted; one that answers
// with an error costs that read only; a caller's refused input is no fault of the replica.
func TestRouterFallsBackAndLeavesAFailedReplicaAlone(t *testing.T) {
	t.Parallel()
	down := dbtest.PoolFor(t, "postgres://postgres@"+closedPort(t)+"/postgres?sslmode=disable&connect_timeout=2", 1)
	c := &counts{n: map[string]int{}}
	r := replica.New(down, replica.Options{RetryAfter: 300 * time.Millisecond, Observer: c}, slog.New(slog.DiscardHandler))
	ctx := t.Context()

	if !r.Use(ctx) || !r.Up() {
		t.Fatal("a fresh router does not use its replica")
	}
	_, err := eventstore.New(down, eventstore.Options{}).Stream(ctx, "s-1")
	if err == nil {
		t.Fatal("a read on a closed port succeeded")
	}
	if !r.Failed(ctx, err) {
		t.Fatalf("Failed(%v) = false, want a fallback", err)
	}
	if r.Up() || r.Use(ctx) {
		t.Error("the router still uses a replica that just failed")
	}
	if c.get(replica.ReasonUnavailable) != 1 || c.get(replica.ReasonDown) != 1 {
		t.Errorf("fallbacks %v, want unavailable 1 and down 1", c.n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !r.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the replica is still left alone 10s after a RetryAfter of 300ms")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// An error the replica answers with: a fallback for this read, the replica stays in use.
	up := dbtest.PoolFor(t, dbtest.URL(t), 1)
	_, err = up.Exec(ctx, `SELECT 1/0`)
	if !r.Failed(ctx, err) || !r.Up() || c.get(replica.ReasonError) != 1 {
		t.Errorf("after %v: up %v, fallbacks %v; want a fallback (error) and the replica still up", err, r.Up(), c.n)
	}
	// Refused input, and a caller that gave up, are not the replica's doing.
	bad := &eventstore.ValidationError{Field: "streamId", Reason: "empty"}
	if r.Failed(ctx, bad) {
		t.Error("Failed(validation error) = true")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if r.Failed(cancelled, err) {
		t.Error("Failed with the caller's context ended = true")
	}
}
