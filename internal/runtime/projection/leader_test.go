package projection_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/leader"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// countingUsers is the users projector, counting the events it applies.
type countingUsers struct {
	projection.Projector
	applied *atomic.Int64
}

func (c countingUsers) Apply(ctx context.Context, tx pgx.Tx, table string, e eventstore.RecordedEvent) error {
	c.applied.Add(1)
	return c.Projector.Apply(ctx, tx, table, e)
}

// usersProjector is the projector of the users read model.
func usersProjector(t *testing.T) projection.Projector {
	for _, p := range projection.Default() {
		if p.Name() == "users" {
			return p
		}
	}
	t.Fatal("no users projector")
	return nil
}

// Two runners on one database, as two server processes would be: only the leader of
// projection:users applies events; when it stops, the other takes over from the checkpoint,
// and no event is applied by both.
func TestOnlyTheLeaderRunsAProjector(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 20)
	store := eventstore.New(pool, eventstore.Options{})
	cmd := command.New(store, command.Options{})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
	opts := projection.Options{Poll: 20 * time.Millisecond, Connect: connect, Leadership: leader.Options{Retry: 20 * time.Millisecond, Check: 20 * time.Millisecond}}
	counts := []*atomic.Int64{{}, {}}
	runners := make([]*projection.Runner, 2)
	stops := make([]func(), 2)
	for i := range runners {
		runners[i] = projection.NewRunner(pool, store, []projection.Projector{countingUsers{Projector: usersProjector(t), applied: counts[i]}}, opts, logger)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = runners[i].Run(ctx)
		}()
		stops[i] = func() { cancel(); <-done }
		t.Cleanup(stops[i])
	}
	ctx := context.Background()
	registered := 0
	register := func(n int) eventstore.Position {
		var last eventstore.Position
		for range n {
			registered++
			u, err := cmd.RegisterUser(ctx, "User", fmt.Sprintf("u%d@example.com", registered))
			if err != nil {
				t.Fatal(err)
			}
			last = u.Position
		}
		return last
	}
	if err := runners[1].WaitFor(ctx, "users", register(20), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	first := 0
	if counts[1].Load() > 0 {
		first = 1
	}
	if a, b := counts[0].Load(), counts[1].Load(); a+b != 20 || (a != 0 && b != 0) {
		t.Fatalf("the two runners applied %d and %d events, want 20 by one of them", a, b)
	}

	stops[first]()
	if err := runners[1-first].WaitFor(ctx, "users", register(15), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if a, b := counts[first].Load(), counts[1-first].Load(); a != 20 || b != 15 {
		t.Errorf("the first leader applied %d events, the second %d; want 20 and 15", a, b)
	}
}
