package projection_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// More projectors than pool connections still make progress: a projector never holds a
// transaction's connection while it waits for another. (When a step read its batch on other
// connections inside its transaction, four projectors on a pool of four deadlocked.)
func TestMoreProjectorsThanConnections(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 2)
	store := eventstore.New(pool, eventstore.Options{})
	projectors := projection.Default()
	if len(projectors) <= 2 {
		t.Fatalf("%d projectors: the test needs more than the pool's 2 connections", len(projectors))
	}
	runner := projection.NewRunner(pool, store, projectors, projection.Options{Poll: 10 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	last := writeDomain(context.Background(), t, command.New(store, command.Options{}), 8)
	for _, p := range projectors {
		if err := runner.WaitFor(context.Background(), p.Name(), last, 30*time.Second); err != nil {
			t.Errorf("%s: %v", p.Name(), err)
		}
	}
}
