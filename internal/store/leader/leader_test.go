package leader_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/advisory"
	"github.com/strata-es/strata/internal/store/leader"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// contender is one process competing for a name in a test.
type contender struct {
	leading atomic.Bool
	led     atomic.Int32    // times fn started
	ended   chan struct{}   // receives when an fn's context has ended
	started chan struct{}   // receives when an fn starts
	ctx     context.Context // of the latest fn
	mu      sync.Mutex
}

func newContender() *contender {
	return &contender{ended: make(chan struct{}, 10), started: make(chan struct{}, 10)}
}

func (c *contender) Leading(_ string, leading bool) { c.leading.Store(leading) }

// run runs leader.Run for c until the returned stop is called; stop waits for Run to return.
func (c *contender) run(t *testing.T, url, name string, opts leader.Options, active *atomic.Int32, overlap *atomic.Bool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	opts.Observer = c
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
	go func() {
		defer close(done)
		leader.Run(ctx, connect, name, opts, func(fctx context.Context) {
			if active.Add(1) > 1 {
				overlap.Store(true)
			}
			c.mu.Lock()
			c.ctx = fctx
			c.mu.Unlock()
			c.led.Add(1)
			c.started <- struct{}{}
			<-fctx.Done()
			active.Add(-1)
			c.ended <- struct{}{}
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("leader.Run did not return within 15s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitLeader waits until exactly one of cs leads and returns it.
func waitLeader(t *testing.T, cs []*contender) *contender {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var leaders []*contender
		for _, c := range cs {
			if c.leading.Load() {
				leaders = append(leaders, c)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no single leader within 15s")
	return nil
}

func TestOnlyOneContenderLeads(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	var active atomic.Int32
	var overlap atomic.Bool
	cs := []*contender{newContender(), newContender(), newContender()}
	opts := leader.Options{Retry: 20 * time.Millisecond, Check: 20 * time.Millisecond}
	for _, c := range cs {
		c.run(t, url, "projection:users", opts, &active, &overlap)
	}
	first := waitLeader(t, cs)
	time.Sleep(300 * time.Millisecond) // fifteen retries of every other contender
	if overlap.Load() {
		t.Fatal("two contenders ran fn at the same time")
	}
	total := int32(0)
	for _, c := range cs {
		total += c.led.Load()
	}
	if total != 1 || first.led.Load() != 1 {
		t.Errorf("fn started %d times (the leader's %d), want once, by the leader", total, first.led.Load())
	}

	// Another name is independent: one of the three leads it too.
	var otherActive atomic.Int32
	other := newContender()
	other.run(t, url, "projection:orders", opts, &otherActive, &overlap)
	waitLeader(t, []*contender{other})
}

// leaderLockSQL finds the session that holds the leadership of a name in the current database.
// Advisory locks are per database, but pg_locks shows those of the whole cluster: without the
// database, it would find the leader of the same name in any other database too (another test's,
// another server's), and terminate it, or fail to when it belongs to another user.
const leaderLockSQL = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ` + advisory.Leader + `
	AND objid = hashtext($1)::oid AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

func TestLeaderWhoseConnectionIsKilledHandsOver(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	var active atomic.Int32
	var overlap atomic.Bool

	// Another database of the cluster has a leader of the same name (same lock class and key):
	// the leader killed below must be this database's, and that one must keep its leadership.
	elsewhereURL := dbtest.EmptyURL(t)
	var elsewhereActive atomic.Int32
	var elsewhereOverlap atomic.Bool
	elsewhere := newContender()
	elsewhere.run(t, elsewhereURL, "projection:orders", leader.Options{Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond}, &elsewhereActive, &elsewhereOverlap)
	waitLeader(t, []*contender{elsewhere})
	elsewhereAdmin, err := pgx.Connect(t.Context(), elsewhereURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = elsewhereAdmin.Close(context.Background()) }()
	var elsewherePID int
	if err := elsewhereAdmin.QueryRow(t.Context(), leaderLockSQL, "projection:orders").Scan(&elsewherePID); err != nil {
		t.Fatalf("find the other database's leader: %v", err)
	}

	a, b := newContender(), newContender()
	// a retries rarely, so that once it has lost the name, b is the one to take it.
	stopA := a.run(t, url, "projection:orders", leader.Options{Retry: time.Hour, Check: 50 * time.Millisecond}, &active, &overlap)
	waitLeader(t, []*contender{a})
	b.run(t, url, "projection:orders", leader.Options{Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond}, &active, &overlap)
	time.Sleep(200 * time.Millisecond)
	if b.leading.Load() || b.led.Load() != 0 {
		t.Fatal("b leads while a holds the name")
	}

	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	// With a timeout, pg_terminate_backend returns once the backend has exited: had it
	// terminated the other database's leader too, that one's lock would be gone below.
	var killed bool
	err = admin.QueryRow(t.Context(), `SELECT pg_terminate_backend(pid, 10000) FROM (`+leaderLockSQL+`) leader`, "projection:orders").Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminate the leader's session: %v (terminated: %v)", err, killed)
	}
	var stillHeld bool
	if err := elsewhereAdmin.QueryRow(t.Context(), `SELECT EXISTS (`+leaderLockSQL+` AND pid = $2)`, "projection:orders", elsewherePID).Scan(&stillHeld); err != nil || !stillHeld {
		t.Fatalf("the other database's leader lost its lock (%v): the leader terminated was not only this database's", err)
	}

	select {
	case <-a.ended:
	case <-time.After(15 * time.Second):
		t.Fatal("a's fn context was not cancelled within 15s of its connection being killed")
	}
	a.mu.Lock()
	cause := a.ctx.Err()
	a.mu.Unlock()
	if cause == nil {
		t.Error("a's fn returned but its context was not cancelled")
	}
	if a.leading.Load() {
		t.Error("a still reports that it leads")
	}
	select {
	case <-b.started:
	case <-time.After(15 * time.Second):
		t.Fatal("b did not take over within 15s")
	}
	if !b.leading.Load() {
		t.Error("b runs fn but does not report that it leads")
	}
	// (a and b may have overlapped for up to a's check interval: the server handed the lock
	// over the moment a's session ended. That is why leadership is no fence; see the package
	// doc.)

	// a, stopped, leaves nothing running; b's leadership ends with its context too.
	stopA()
	if a.led.Load() != 1 {
		t.Errorf("a led %d times, want 1", a.led.Load())
	}
	// The other database's leader led all along, once.
	select {
	case <-elsewhere.ended:
		t.Error("the other database's leader lost its leadership")
	default:
	}
	if !elsewhere.leading.Load() || elsewhere.led.Load() != 1 {
		t.Errorf("the other database's leader: leading %v, led %d times; want true and 1", elsewhere.leading.Load(), elsewhere.led.Load())
	}
}

// A leader that stops gives the name up at once: the next contender need not wait for anything
// but its own retry.
func TestStoppedLeaderReleases(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	var active atomic.Int32
	var overlap atomic.Bool
	a, b := newContender(), newContender()
	opts := leader.Options{Retry: 20 * time.Millisecond, Check: time.Hour}
	stopA := a.run(t, url, "scavenger", opts, &active, &overlap)
	waitLeader(t, []*contender{a})
	b.run(t, url, "scavenger", opts, &active, &overlap)
	stopA()
	select {
	case <-a.ended:
	default:
		t.Fatal("a's fn had not ended when Run returned")
	}
	select {
	case <-b.started:
	case <-time.After(15 * time.Second):
		t.Fatal("b did not take over within 15s of a stopping")
	}
	if overlap.Load() {
		t.Error("a and b ran fn at the same time")
	}
}
