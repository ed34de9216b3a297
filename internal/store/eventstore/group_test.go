package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/advisory"
	. "github.com/strata-es/strata/internal/store/eventstore" //nolint:revive // the tests read as the package's own
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// These tests line appends up in the queue: the only writer is held on a stream lock the test
// owns, the appends under test queue behind it (GroupQueue), and releasing the lock lets them
// go as one batch (GroupStats).

type outcome struct {
	res AppendResult
	err error
}

// groupRig is a store with group commit and one writer, and a lock to hold that writer with.
type groupRig struct {
	t    *testing.T
	s    *Store
	pool *pgxpool.Pool
	ctx  context.Context
}

func newGroupRig(t *testing.T) *groupRig {
	t.Helper()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 20)
	return &groupRig{t: t, s: New(pool, Options{GroupCommit: true, GroupWriters: 1}), pool: pool, ctx: t.Context()}
}

// batch runs appends so that they are written in one group commit, and returns their outcomes
// in order. It fails the test if they did not go as one batch.
func (g *groupRig) batch(appends ...func() (AppendResult, error)) []outcome {
	g.t.Helper()
	out, err := g.tryBatch(appends...)
	if err != nil {
		g.t.Fatal(err)
	}
	return out
}

// tryBatch is batch for a goroutine other than the test's: instead of failing the test (which
// only the test's goroutine may do) it returns an error if the appends did not go as one batch.
func (g *groupRig) tryBatch(appends ...func() (AppendResult, error)) ([]outcome, error) {
	// Hold the only writer: an append to a stream whose lock the test owns.
	tx, err := g.pool.Begin(g.ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(g.ctx)) }()
	blocker := "blocker-" + uuid.NewString()
	if _, err := tx.Exec(g.ctx, `SELECT pg_advisory_xact_lock(`+advisory.Stream+`, hashtext($1))`, blocker); err != nil {
		return nil, err
	}
	held := make(chan error, 1)
	go func() {
		_, err := g.s.Append(g.ctx, blocker, Any(), []EventData{{Type: "Blocker", Data: json.RawMessage(`{}`)}})
		held <- err
	}()
	// The writer has taken the blocker: it waits for the lock. A writer of an earlier batch
	// may still be counted a moment after its callers were answered, so the count alone does
	// not say that this one's writer is the blocker's.
	if err := g.waitLockWait(blocker); err != nil {
		return nil, err
	}
	if _, err := g.waitQueuedOr(0, nil); err != nil {
		return nil, err
	}
	before, _ := g.s.GroupStats()

	// One at a time, so that they queue in the order given; an append refused before it is
	// queued (bad input) returns at once.
	out := make([]outcome, len(appends))
	var wg sync.WaitGroup
	queued := 0
	for i, f := range appends {
		finished := make(chan struct{})
		wg.Go(func() {
			defer close(finished)
			out[i].res, out[i].err = f()
		})
		ok, err := g.waitQueuedOr(queued+1, finished)
		if err != nil {
			return nil, err
		}
		if ok {
			queued++
		}
	}
	if err := tx.Commit(g.ctx); err != nil {
		return nil, err
	}
	if err := <-held; err != nil {
		return nil, fmt.Errorf("the blocking append: %w", err)
	}
	wg.Wait()
	if after, _ := g.s.GroupStats(); after != before+1 {
		return nil, fmt.Errorf("%d queued appends went in %d batches, want 1", queued, after-before)
	}
	return out, nil
}

// waitLockWait waits until a backend of the rig's database waits for stream's append lock.
func (g *groupRig) waitLockWait(stream string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting bool
		err := g.pool.QueryRow(g.ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = `+advisory.Stream+`
			AND objid::bigint = (hashtext($1)::bigint + 4294967296) % 4294967296
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, stream).Scan(&waiting)
		if err != nil {
			return err
		}
		if waiting {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited 20s for an append to wait for the lock of %s", stream)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitQueuedOr waits until n appends wait in the queue and a writer is busy (true), or until
// finished is closed (false). It returns an error after 20s of neither.
func (g *groupRig) waitQueuedOr(n int, finished <-chan struct{}) (bool, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		queued, writers := g.s.GroupQueue()
		if queued == n && writers == 1 {
			return true, nil
		}
		select {
		case <-finished:
			return false, nil
		default:
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("waited 20s for %d queued appends (%d queued, %d writers)", n, queued, writers)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *groupRig) appendOf(stream string, expected ExpectedVersion, events ...EventData) func() (AppendResult, error) {
	return func() (AppendResult, error) { return g.s.Append(g.ctx, stream, expected, events) }
}

func event(data string) EventData {
	return EventData{Type: "T", Data: json.RawMessage(data)}
}

// storedIn counts the events of a stream.
func (g *groupRig) storedIn(stream string) int {
	g.t.Helper()
	var n int
	if err := g.pool.QueryRow(g.ctx, `SELECT count(*) FROM events WHERE stream_id = $1`, stream).Scan(&n); err != nil {
		g.t.Fatal(err)
	}
	return n
}

// Fifty appends to one stream with the same expected version, in one batch: one wins, the
// others are told the version it left.
func TestGroupCommitFiftyRacersOneWinner(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	var appends []func() (AppendResult, error)
	for i := range 50 {
		appends = append(appends, g.appendOf("race-1", NoStream(), event(fmt.Sprintf(`{"i":%d}`, i))))
	}
	wins := 0
	for i, o := range g.batch(appends...) {
		var wrong *WrongExpectedVersionError
		switch {
		case o.err == nil:
			wins++
			if o.res.NextExpectedVersion != 1 {
				t.Errorf("the winner: %+v", o.res)
			}
		case errors.As(o.err, &wrong):
			if wrong.Actual != 1 {
				t.Errorf("racer %d: %v, want actual version 1", i, wrong)
			}
		default:
			t.Errorf("racer %d: %v", i, o.err)
		}
	}
	if wins != 1 || g.storedIn("race-1") != 1 {
		t.Errorf("%d winners, %d events stored; want 1 and 1", wins, g.storedIn("race-1"))
	}
}

// A batch of good appends, conflicting ones, two appends to one stream checked in order, and
// bad input commits exactly the good ones, in one transaction.
func TestGroupCommitMixedBatchCommitsTheGoodOnes(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	if _, err := g.s.Append(g.ctx, "mixed-old", Any(), []EventData{event(`{}`), event(`{}`)}); err != nil {
		t.Fatal(err)
	}
	out := g.batch(
		g.appendOf("mixed-a", NoStream(), event(`{"a":1}`), event(`{"a":2}`)),          // good, two events
		g.appendOf("mixed-old", Exactly(5), event(`{}`)),                               // conflict: at 2
		g.appendOf("mixed-b", Any(), event(`{"b":1}`)),                                 // good
		g.appendOf("mixed-b", Exactly(1), event(`{"b":2}`)),                            // good: checked against the previous
		g.appendOf("mixed-b", Exactly(1), event(`{"b":3}`)),                            // conflict: now at 2
		g.appendOf("mixed-new", Exactly(3), event(`{}`)),                               // conflict: no stream
		g.appendOf("mixed-c", Any(), EventData{Type: "", Data: json.RawMessage(`{}`)}), // bad input
		g.appendOf("mixed-old", Exactly(2), event(`{"old":3}`)),                        // good
	)
	good := map[int]int64{0: 2, 2: 1, 3: 2, 7: 3} // append → its stream's version after it
	conflicts := map[int]int64{1: 2, 4: 2, 5: 0}  // append → the actual version it is told
	for i, o := range out {
		var wrong *WrongExpectedVersionError
		switch {
		case good[i] != 0:
			if o.err != nil || o.res.NextExpectedVersion != good[i] {
				t.Errorf("append %d: %+v %v, want success at version %d", i, o.res, o.err, good[i])
				continue
			}
		case i == 6:
			if !errors.Is(o.err, ErrInvalidInput) {
				t.Errorf("the bad append: %v", o.err)
			}
		case errors.As(o.err, &wrong):
			if wrong.Actual != conflicts[i] {
				t.Errorf("append %d: %v, want actual %d", i, wrong, conflicts[i])
			}
		default:
			t.Errorf("append %d: %+v %v, want a conflict", i, o.res, o.err)
		}
	}
	var txs int
	if err := g.pool.QueryRow(g.ctx, `SELECT count(DISTINCT transaction_id) FROM events WHERE stream_id IN ('mixed-a', 'mixed-b') OR stream_id = 'mixed-old' AND version = 3`).Scan(&txs); err != nil || txs != 1 {
		t.Errorf("the good appends committed in %d transactions (%v), want 1", txs, err)
	}
	for stream, want := range map[string]int{"mixed-a": 2, "mixed-b": 2, "mixed-old": 3, "mixed-new": 0, "mixed-c": 0} {
		if n := g.storedIn(stream); n != want {
			t.Errorf("%s holds %d events, want %d", stream, n, want)
		}
	}
	// Positions follow arrival order within the batch, and versions within each stream.
	if out[0].res.Position.Compare(out[2].res.Position) >= 0 || out[2].res.Position.Compare(out[3].res.Position) >= 0 || out[3].res.Position.Compare(out[7].res.Position) >= 0 {
		t.Errorf("positions out of arrival order: %v %v %v %v", out[0].res.Position, out[2].res.Position, out[3].res.Position, out[7].res.Position)
	}
}

// A value PostgreSQL refuses fails its own append only: the batch is rolled back and each of
// its appends runs alone.
func TestGroupCommitValueThePostgresRefusesFailsItsAppendAlone(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	out := g.batch(
		g.appendOf("refused-a", Any(), event(`{"a":1}`)),
		g.appendOf("refused-b", Any(), event(`{"nul":"\u0000"}`)), // jsonb cannot hold \u0000
		g.appendOf("refused-c", NoStream(), event(`{"c":1}`)),
	)
	if out[0].err != nil || out[2].err != nil {
		t.Errorf("the good appends: %v, %v", out[0].err, out[2].err)
	}
	if !errors.Is(out[1].err, ErrInvalidInput) {
		t.Errorf("the refused value: %v, want ErrInvalidInput", out[1].err)
	}
	if g.storedIn("refused-a") != 1 || g.storedIn("refused-b") != 0 || g.storedIn("refused-c") != 1 {
		t.Errorf("stored: a %d, b %d, c %d; want 1, 0, 1", g.storedIn("refused-a"), g.storedIn("refused-b"), g.storedIn("refused-c"))
	}
}

// Retries write nothing twice: the same append twice in one batch, and again in a later batch.
func TestGroupCommitIdempotentRetries(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	same := func() (AppendResult, error) {
		return g.s.Append(g.ctx, "retry-1", NoStream(), []EventData{
			{ID: ids[0], Type: "T", Data: json.RawMessage(`{"n":1}`)}, {ID: ids[1], Type: "T", Data: json.RawMessage(`{"n":2}`)},
		})
	}
	out := g.batch(same, same, g.appendOf("retry-other", Any(), event(`{}`)))
	if out[0].err != nil || out[1].err != nil || out[2].err != nil {
		t.Fatalf("%v / %v / %v", out[0].err, out[1].err, out[2].err)
	}
	if out[0].res.Repeated || !out[1].res.Repeated || out[0].res.Position != out[1].res.Position {
		t.Errorf("in one batch: first %+v, second %+v; want the second to repeat the first", out[0].res, out[1].res)
	}
	later := g.batch(same, g.appendOf("retry-other", Any(), event(`{}`)))
	if later[0].err != nil || !later[0].res.Repeated || later[0].res.Position != out[0].res.Position {
		t.Errorf("in a later batch: %+v %v", later[0].res, later[0].err)
	}
	// The same ids with other content are refused, not written.
	other := g.batch(func() (AppendResult, error) {
		return g.s.Append(g.ctx, "retry-1", NoStream(), []EventData{{ID: ids[0], Type: "T", Data: json.RawMessage(`{"n":9}`)}})
	}, g.appendOf("retry-other", Any(), event(`{}`)))
	if !errors.Is(other[0].err, ErrDuplicateEventID) {
		t.Errorf("an id reused with other content: %v", other[0].err)
	}
	if n := g.storedIn("retry-1"); n != 2 {
		t.Errorf("retry-1 holds %d events, want 2", n)
	}
}

// When the batch's connection dies, every append in it fails with an error IsUnavailable
// recognises, and none is stored.
func TestGroupCommitLostConnectionFailsTheWholeBatchRetryably(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	admin, err := g.pool.Acquire(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Release()
	// Hold the lock of one stream of the batch, so the batch waits in its transaction.
	tx, err := g.pool.Begin(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(g.ctx)) }()
	if _, err := tx.Exec(g.ctx, `SELECT pg_advisory_xact_lock(`+advisory.Stream+`, hashtext('lost-held'))`); err != nil {
		t.Fatal(err)
	}
	// The batch runs in a goroutine of its own, which must not fail the test: it hands its
	// error back, and the test fails on its own goroutine.
	type batchResult struct {
		out []outcome
		err error
	}
	done := make(chan batchResult, 1)
	go func() {
		out, err := g.tryBatch(g.appendOf("lost-a", Any(), event(`{}`)), g.appendOf("lost-held", Any(), event(`{}`)), g.appendOf("lost-b", Any(), event(`{}`)))
		done <- batchResult{out, err}
	}()
	// The batch's backend waits on the held lock: terminate it. Only this database's: pg_locks
	// shows the whole cluster's.
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case r := <-done:
			t.Fatalf("the batch ended before its backend was terminated: %+v, %v", r.out, r.err)
		default:
		}
		err := admin.QueryRow(g.ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = `+advisory.Stream+`
			AND objid::bigint = (hashtext('lost-held')::bigint + 4294967296) % 4294967296
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1`).Scan(&pid)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch never waited on the lock: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := admin.Exec(g.ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for i, o := range r.out {
		if o.err == nil || !IsUnavailable(o.err) {
			t.Errorf("append %d of the lost batch: %v, want a retryable unavailability", i, o.err)
		}
	}
	for _, stream := range []string{"lost-a", "lost-held", "lost-b"} {
		if n := g.storedIn(stream); n != 0 {
			t.Errorf("%s holds %d events after its batch was lost", stream, n)
		}
	}
}

// multiOf is an AppendMulti for a batch; its results land in *out.
func (g *groupRig) multiOf(out *[]AppendResult, parts ...StreamAppend) func() (AppendResult, error) {
	return func() (AppendResult, error) {
		res, err := g.s.AppendMulti(g.ctx, parts)
		*out = res
		if err != nil {
			return AppendResult{}, err
		}
		return res[0], nil
	}
}

// Multi-stream appends share a batch too: each is written whole or not at all, and appends to
// their streams later in the batch are checked against them.
func TestGroupCommitMultiStreamAppends(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	one := func(data string) []EventData { return []EventData{event(data)} }
	var first, second, check, failed []AppendResult
	out := g.batch(
		g.multiOf(&first, StreamAppend{StreamID: "user-m1", Expected: NoStream(), Events: one(`{}`)}, StreamAppend{StreamID: "claim-m", Expected: NoStream(), Events: one(`{}`)}),
		g.multiOf(&second, StreamAppend{StreamID: "user-m2", Expected: NoStream(), Events: one(`{}`)}, StreamAppend{StreamID: "claim-m", Expected: NoStream(), Events: one(`{}`)}),
		g.appendOf("user-m1", Exactly(1), event(`{"second":true}`)),
		g.multiOf(&check, StreamAppend{StreamID: "user-m3", Expected: NoStream(), Events: one(`{}`)}, StreamAppend{StreamID: "claim-free", Expected: NoStream()}),
		g.multiOf(&failed, StreamAppend{StreamID: "user-m4", Expected: NoStream(), Events: one(`{}`)}, StreamAppend{StreamID: "claim-m", Expected: Exactly(5)}),
	)
	var wrong *WrongExpectedVersionError
	switch {
	case out[0].err != nil || len(first) != 2 || first[1].NextExpectedVersion != 1:
		t.Errorf("the first claim: %+v %v", first, out[0].err)
	case !errors.As(out[1].err, &wrong) || wrong.StreamID != "claim-m" || wrong.Actual != 1:
		t.Errorf("the second claim of claim-m: %v, want a conflict on it at version 1", out[1].err)
	case out[2].err != nil || out[2].res.NextExpectedVersion != 2:
		t.Errorf("the append after the claim: %+v %v", out[2].res, out[2].err)
	case out[3].err != nil || len(check) != 2 || check[1].NextExpectedVersion != 0 || len(check[1].Events) != 0:
		t.Errorf("a claim with a check-only part: %+v %v", check, out[3].err)
	case second != nil || failed != nil:
		t.Errorf("refused claims returned results: %+v, %+v", second, failed)
	case !errors.As(out[4].err, &wrong) || wrong.StreamID != "claim-m" || wrong.Actual != 1:
		t.Errorf("a failed check: %v, want a conflict on claim-m at version 1", out[4].err)
	}
	for stream, want := range map[string]int{"user-m1": 2, "claim-m": 1, "user-m2": 0, "user-m3": 1, "claim-free": 0, "user-m4": 0} {
		if n := g.storedIn(stream); n != want {
			t.Errorf("%s holds %d events, want %d", stream, n, want)
		}
	}
	var rows, txs int
	if err := g.pool.QueryRow(g.ctx, `SELECT (SELECT count(*) FROM streams WHERE stream_id = 'claim-free'),
		(SELECT count(DISTINCT transaction_id) FROM events WHERE stream_id IN ('user-m1', 'claim-m', 'user-m3'))`).Scan(&rows, &txs); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || txs != 1 {
		t.Errorf("a check-only part left %d stream rows; the good appends took %d transactions, want 0 and 1", rows, txs)
	}
}

// Conditional appends in one batch with plain ones: they are written after the others, so that
// their checks see the batch's own writes, and what one writes counts for a later one whose
// condition it matches.
func TestGroupCommitConditionalAppends(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	tagged := func(typ string, tags ...string) EventData {
		return EventData{Type: typ, Data: json.RawMessage(`{}`), Tags: tags}
	}
	cond := func(tag string) Condition {
		return Condition{FailIfEventsMatch: Query{Items: []QueryItem{{Tags: []string{tag}}}}}
	}
	appendIf := func(stream string, e EventData, c Condition) func() (AppendResult, error) {
		return func() (AppendResult, error) { return g.s.AppendIf(g.ctx, stream, Any(), []EventData{e}, c) }
	}
	id := uuid.New()
	repeat := tagged("Taken", "seat:4")
	repeat.ID = id
	if _, err := g.s.AppendIf(g.ctx, "guest-r", Any(), []EventData{repeat}, cond("seat:4")); err != nil {
		t.Fatal(err)
	}
	out := g.batch(
		appendIf("guest-1", tagged("Taken", "seat:1"), cond("seat:1")),      // fails: the plain append below is in the same transaction, after its read
		g.appendOf("walkin-1", Any(), tagged("Taken", "seat:1")),            // plain: written first
		appendIf("guest-2", tagged("Taken", "seat:2"), cond("seat:2")),      // succeeds
		appendIf("guest-3", tagged("Taken", "seat:2"), cond("seat:2")),      // fails: guest-2's event, an earlier wave
		appendIf("guest-4", tagged("Taken", "seat:3"), cond("seat:3")),      // succeeds
		appendIf("guest-r", repeat, cond("seat:4")),                         // a repeat: answered before its condition
		appendIf("guest-5", tagged("Taken", "seat:5"), cond("seat:nobody")), // succeeds
	)
	var failed *ConditionFailedError
	wantFail := map[int]bool{0: true, 3: true}
	for i, o := range out {
		switch {
		case wantFail[i]:
			if !errors.As(o.err, &failed) {
				t.Errorf("append %d: %v, want a ConditionFailedError", i, o.err)
			}
		case o.err != nil:
			t.Errorf("append %d: %v", i, o.err)
		}
	}
	if !out[5].res.Repeated {
		t.Errorf("the repeat: %+v, want repeated", out[5].res)
	}
	if errors.As(out[0].err, &failed) && failed.Position != out[1].res.Position {
		t.Errorf("guest-1 failed on %s, want the walk-in's %s", failed.Position, out[1].res.Position)
	}
	for stream, want := range map[string]int{"guest-1": 0, "walkin-1": 1, "guest-2": 1, "guest-3": 0, "guest-4": 1, "guest-r": 1, "guest-5": 1} {
		if n := g.storedIn(stream); n != want {
			t.Errorf("%s holds %d events, want %d", stream, n, want)
		}
	}
}

// An append that finds nothing written or queued is written by its caller; appends that queue
// meanwhile still get a writer when it is done, and a caller that gives up while its own
// statement waits gets its context's error, with nothing written.
func TestGroupCommitLoneAppendIsWrittenByItsCaller(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	hold := func(stream string) (release func()) {
		tx, err := g.pool.Begin(g.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(g.ctx, `SELECT pg_advisory_xact_lock(`+advisory.Stream+`, hashtext($1))`, stream); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := tx.Commit(g.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendIn := func(ctx context.Context, stream string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := g.s.Append(ctx, stream, Any(), []EventData{event(`{}`)})
			done <- err
		}()
		return done
	}
	wait := func(done <-chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("an append did not return within 20s")
			return nil
		}
	}
	batches, _ := g.s.GroupStats()

	release := hold("lone-1")
	lone := appendIn(g.ctx, "lone-1") // writes alone, and waits for the lock
	if err := g.waitLockWait("lone-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.waitQueuedOr(0, nil); err != nil {
		t.Fatal(err)
	}
	queued := appendIn(g.ctx, "lone-2") // the only writer's place is taken: it queues
	if _, err := g.waitQueuedOr(1, nil); err != nil {
		t.Fatal(err)
	}
	release()
	if err := wait(lone); err != nil {
		t.Fatalf("the lone append: %v", err)
	}
	if err := wait(queued); err != nil {
		t.Fatalf("the append queued behind it: %v", err)
	}
	if after, _ := g.s.GroupStats(); after != batches+2 {
		t.Errorf("%d batches for two appends one after the other, want 2", after-batches)
	}

	release = hold("lone-3")
	defer release()
	ctx, cancel := context.WithCancel(g.ctx)
	givenUp := appendIn(ctx, "lone-3")
	if err := g.waitLockWait("lone-3"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := wait(givenUp); !errors.Is(err, context.Canceled) {
		t.Errorf("an append given up while it waits for its lock: %v, want context.Canceled", err)
	}
	if n := g.storedIn("lone-3"); n != 0 {
		t.Errorf("%d events stored in lone-3 by an append given up", n)
	}
}
