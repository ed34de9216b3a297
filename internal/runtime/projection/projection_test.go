package projection_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/advisory"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	cmd    *command.Handler
	runner *projection.Runner
}

func newFixture(t *testing.T, opts projection.Options) *fixture {
	t.Helper()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 20)
	store := eventstore.New(pool, eventstore.Options{})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &fixture{
		pool:   pool,
		store:  store,
		cmd:    command.New(store, command.Options{}),
		runner: projection.NewRunner(pool, store, projection.Default(), opts, logger),
	}
}

// run runs the projectors until the test ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.runner.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// writeDomain drives the seed domain: users, and orders in every state.
func writeDomain(ctx context.Context, t *testing.T, h *command.Handler, users int) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	note := func(p eventstore.Position) {
		if p.Compare(last) > 0 {
			last = p
		}
	}
	for i := range users {
		u, err := h.RegisterUser(ctx, fmt.Sprintf("User %d", i), fmt.Sprintf("user%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		note(u.Position)
		o, err := h.CreateOrder(ctx, u.User.ID, []order.Item{{SKU: "A", Quantity: int64(i + 1), UnitPrice: 250}})
		if err != nil {
			t.Fatal(err)
		}
		note(o.Position)
		switch i % 4 {
		case 1:
			r, err := h.PayOrder(ctx, o.Order.ID, o.Order.Total, nil)
			if err != nil {
				t.Fatal(err)
			}
			note(r.Position)
		case 2:
			r, err := h.CancelOrder(ctx, o.Order.ID, "changed my mind", nil)
			if err != nil {
				t.Fatal(err)
			}
			note(r.Position)
			r2, err := h.RenameUser(ctx, u.User.ID, fmt.Sprintf("Renamed %d", i), nil)
			if err != nil {
				t.Fatal(err)
			}
			note(r2.Position)
		case 3:
			if _, err := h.PayOrder(ctx, o.Order.ID, o.Order.Total, nil); err != nil {
				t.Fatal(err)
			}
			r, err := h.ShipOrder(ctx, o.Order.ID, "DHL", "T1", nil)
			if err != nil {
				t.Fatal(err)
			}
			note(r.Position)
			r2, err := h.DeactivateUser(ctx, u.User.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			note(r2.Position)
		}
	}
	return last
}

type userRow struct {
	ID, Name, Email, Status string
	Version                 int64
}

type orderRow struct {
	ID, CustomerID, Status string
	Items                  string
	Total, Version         int64
}

func dump(t *testing.T, pool *pgxpool.Pool) ([]userRow, []orderRow) {
	t.Helper()
	ctx := context.Background()
	var users []userRow
	rows, err := pool.Query(ctx, `SELECT id::text, name, email, status, version FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u userRow
		if err := rows.Scan(&u.ID, &u.Name, &u.Email, &u.Status, &u.Version); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	var orders []orderRow
	rows, err = pool.Query(ctx, `SELECT id::text, customer_id::text, status, items::text, total, version FROM orders ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o orderRow
		if err := rows.Scan(&o.ID, &o.CustomerID, &o.Status, &o.Items, &o.Total, &o.Version); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	return users, orders
}

// checkAgainstReplay compares every read-model row with the aggregate replayed from its
// stream: an event applied twice or missed shows as a wrong version or state.
func checkAgainstReplay(t *testing.T, f *fixture, wantUsers, wantOrders int) {
	t.Helper()
	ctx := context.Background()
	users, orders := dump(t, f.pool)
	if len(users) != wantUsers || len(orders) != wantOrders {
		t.Fatalf("read models hold %d users and %d orders, want %d and %d", len(users), len(orders), wantUsers, wantOrders)
	}
	for _, u := range users {
		s, err := f.cmd.LoadUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := (userRow{s.ID, s.Name, s.Email, string(s.Status), s.Version}); u != want {
			t.Errorf("users row %+v, replay gives %+v", u, want)
		}
	}
	for _, o := range orders {
		s, err := f.cmd.LoadOrder(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o.CustomerID != s.CustomerID || o.Status != string(s.Status) || o.Total != int64(s.Total) || o.Version != s.Version {
			t.Errorf("orders row %+v, replay gives %+v", o, s)
		}
	}
}

func waitAll(t *testing.T, f *fixture, pos eventstore.Position) {
	t.Helper()
	for _, p := range projection.Default() { // every read model the fixture's runner keeps
		if err := f.runner.WaitFor(context.Background(), p.Name(), pos, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProjectorsFollowTheLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{Batch: 7, Poll: 20 * time.Millisecond, IdleMove: time.Millisecond})
	ctx := context.Background()
	// Events of other categories move the checkpoints past them too.
	if _, err := f.store.Append(ctx, "audit-1", eventstore.Any(), []eventstore.EventData{{Type: "Noted", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	last := writeDomain(ctx, t, f.cmd, 12)
	other, err := f.store.Append(ctx, "audit-1", eventstore.Any(), []eventstore.EventData{{Type: "Noted", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, f, last)
	waitAll(t, f, other.Position) // no user or order event follows it: the horizon moves them on
	checkAgainstReplay(t, f, 12, 12)

	infos, err := f.runner.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Status != projection.StatusLive || in.Lag != 0 || in.Position < other.Position.String() {
			t.Errorf("status %+v, want LIVE with no lag at or after %s", in, other.Position)
		}
	}
}

// A projector whose category has nothing new moves its checkpoint only now and then (IdleMove),
// and WaitFor does not wait for that: nothing of its category up to the position is enough.
func TestWaitForNeedsNoMoveForOtherCategories(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{Poll: 20 * time.Millisecond, IdleMove: time.Hour})
	ctx := context.Background()
	f.run(t)
	last := writeDomain(ctx, t, f.cmd, 2)
	waitAll(t, f, last)
	other, err := f.store.Append(ctx, "audit-1", eventstore.Any(), []eventstore.EventData{{Type: "Noted", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, f, other.Position)
	infos, err := f.runner.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == "products" && in.Position >= other.Position.String() {
			t.Errorf("products moved to %s with nothing of its own, within the idle interval", in.Position)
		}
	}
	// An event of its own category, not applied yet, is waited for.
	u, err := f.cmd.RegisterUser(ctx, "Late", "late@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.runner.WaitFor(ctx, "users", u.Position, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	users, err := f.pool.Query(ctx, `SELECT 1 FROM users WHERE id = $1`, u.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := users.Next()
	users.Close()
	if !found {
		t.Error("WaitFor returned before the users read model had the registration")
	}
}

func TestWaitForTimesOutClearly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{})
	// Nothing runs the projectors here.
	u, err := f.cmd.RegisterUser(context.Background(), "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	err = f.runner.WaitFor(context.Background(), "users", u.Position, 150*time.Millisecond)
	if !errors.Is(err, projection.ErrConsistencyTimeout) {
		t.Fatalf("got %v, want ErrConsistencyTimeout", err)
	}
	// Lag counts events readers can see: the user's event shows once every older transaction
	// in the cluster (other tests share it) has ended.
	for deadline := time.Now().Add(30 * time.Second); ; {
		infos, err := f.runner.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if infos[0].Lag == 0 && infos[0].Status == projection.StatusLive && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if infos[0].Name != "users" || infos[0].Status != projection.StatusCatchingUp || infos[0].Lag != 1 {
			t.Errorf("users status %+v, want CATCHING_UP with lag 1", infos[0])
		}
		break
	}
}

// Projectors stopped at random moments, again and again, while they work: whatever was
// committed stays applied once, whatever was not is applied by the next run.
func TestProjectorsStoppedMidBatchLoseAndDoubleNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{Batch: 5, Poll: 5 * time.Millisecond})
	ctx := context.Background()
	last := writeDomain(ctx, t, f.cmd, 40)
	for range 25 {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = f.runner.Run(runCtx)
		}()
		time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		cancel()
		<-done
	}
	f.run(t)
	waitAll(t, f, last)
	checkAgainstReplay(t, f, 40, 40)
}

func TestRebuildGivesTheSameReadModelWhileWritersRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{Batch: 10, Poll: 10 * time.Millisecond})
	ctx := context.Background()
	f.run(t)
	// The live tables hold the first users before the rebuild starts, so that it has events to
	// apply however long another test's transaction holds the horizon back on the shared server.
	waitAll(t, f, writeDomain(ctx, t, f.cmd, 20))

	// Writers keep going during the rebuild; queries keep being answered from the live table.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lastMu sync.Mutex
	var last eventstore.Position
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			u, err := f.cmd.RegisterUser(ctx, "Late", fmt.Sprintf("late%d@example.com", i))
			if err != nil {
				t.Error(err)
				return
			}
			lastMu.Lock()
			last = u.Position
			lastMu.Unlock()
		}
	})
	var reads int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
				t.Errorf("query during rebuild: %v", err)
				return
			}
			reads++
		}
	})
	var progressed int64
	err := f.runner.Rebuild(ctx, "users", func(applied int64, _ string) { progressed = applied })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if progressed == 0 || reads == 0 {
		t.Errorf("rebuild reported %d events, %d queries ran during it", progressed, reads)
	}
	if err := f.runner.Rebuild(ctx, "orders", nil); err != nil {
		t.Fatal(err)
	}
	lastMu.Lock()
	waitAll(t, f, last)
	lastMu.Unlock()
	var registered int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM streams WHERE stream_id LIKE 'user-%'`).Scan(&registered); err != nil {
		t.Fatal(err)
	}
	checkAgainstReplay(t, f, registered, 20)

	// And a rebuild with nothing new gives exactly the same tables.
	beforeUsers, beforeOrders := dump(t, f.pool)
	for _, name := range []string{"users", "orders"} {
		if err := f.runner.Rebuild(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	afterUsers, afterOrders := dump(t, f.pool)
	if !reflect.DeepEqual(beforeUsers, afterUsers) || !reflect.DeepEqual(beforeOrders, afterOrders) {
		t.Errorf("rebuild changed the read models")
	}
	var leftovers int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE '%rebuild%' OR tablename LIKE '%_old'`).Scan(&leftovers); err != nil {
		t.Fatal(err)
	}
	if leftovers != 0 {
		t.Errorf("%d rebuild tables left behind", leftovers)
	}
}

func TestRebuildRefusesUnknownAndConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{})
	if err := f.runner.Rebuild(context.Background(), "nope", nil); !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("unknown projection: got %v", err)
	}
	// Hold the rebuild lock as a running rebuild would, from another session.
	conn, err := f.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock(`+advisory.Rebuild+`, hashtext('users'))`); err != nil {
		t.Fatal(err)
	}
	infos, err := f.runner.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Status != projection.StatusRebuilding {
		t.Errorf("users status %s while a rebuild holds its lock, want REBUILDING", infos[0].Status)
	}
	if err := f.runner.Rebuild(context.Background(), "users", nil); !errors.Is(err, projection.ErrRebuildRunning) {
		t.Errorf("concurrent rebuild: got %v", err)
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock(`+advisory.Rebuild+`, hashtext('users'))`); err != nil {
		t.Fatal(err)
	}
}
