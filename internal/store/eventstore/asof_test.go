package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/advisory"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// An event whose transaction began at t is not yet known to be in the log as of t while a
// transaction that began after t, with an older id, is still open: should that one append, its
// events would come first in the global order and end the prefix before the event. AsOf waits
// for it rather than answer with a prefix that leaves the event out, and answers once it ends.
func TestAsOfWaitsForAnOlderTransactionThatBeganLater(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()

	// The append's transaction begins (its events' time) and then waits on the stream's lock,
	// before it has a transaction id.
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(context.Background()) }()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(`+advisory.Stream+`, hashtext('asof-1'))`); err != nil {
		t.Fatal(err)
	}
	appended := make(chan eventstore.AppendResult, 1)
	failed := make(chan error, 1)
	go func() {
		res, err := s.Append(ctx, "asof-1", eventstore.NoStream(), []eventstore.EventData{ev("Noted", `{}`)})
		if err != nil {
			failed <- err
			return
		}
		appended <- res
	}()
	for waiting := 0; waiting == 0; {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid = `+advisory.Stream+` AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another transaction begins after that and takes an id first.
	later, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = later.Rollback(context.Background()) }()
	if _, err := later.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var res eventstore.AppendResult
	select {
	case res = <-appended:
	case err := <-failed:
		t.Fatal(err)
	}
	at := res.Events[0].RecordedAt

	if pos, err := s.AsOf(ctx, at, 300*time.Millisecond); !errors.Is(err, eventstore.ErrAsOfUnsettled) {
		t.Fatalf("as of the event's time with an older transaction open: %v, %v; want ErrAsOfUnsettled", pos, err)
	}
	// It ends without appending: the event is in the log as of its time.
	if err := later.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := s.AsOf(ctx, at, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Compare(pos) >= 0 {
		t.Errorf("as of %s: the log ends at %s, before the event at %s that began then", at, pos, res.Position)
	}
}

// A transaction open in another database of the cluster cannot append to this log, so AsOf does
// not wait for it, however early it began (an old one of this database's own would keep the
// log as of a later time open). Without an id it does not hold back the horizon either: AsOf
// answers at once.
func TestAsOfDoesNotWaitForAnotherDatabasesTransaction(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, eventstore.Options{})
	ctx := context.Background()

	elsewhere, err := pgx.Connect(ctx, dbtest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = elsewhere.Close(context.Background()) }()
	open, err := elsewhere.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = open.Rollback(context.Background()) }()
	if _, err := open.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}

	res := mustAppend(t, s, "asof-2", eventstore.NoStream(), ev("Noted", `{}`))
	at := res.Events[0].RecordedAt // after the other database's transaction began
	pos, err := s.AsOf(ctx, at, 15*time.Second)
	if err != nil {
		t.Fatalf("as of the event's time with a transaction open in another database: %v", err)
	}
	if res.Position.Compare(pos) >= 0 {
		t.Errorf("as of %s: the log ends at %s, before the event at %s that began then", at, pos, res.Position)
	}
}
