package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

func tagged(typ string, tags ...string) eventstore.EventData {
	return eventstore.EventData{Type: typ, Data: []byte(`{}`), Tags: tags}
}

func query(items ...eventstore.QueryItem) eventstore.Query { return eventstore.Query{Items: items} }

// settled reads q from the start until it returns at least n events: the global order moves
// past an append only once every older transaction in the cluster has ended, and other tests'
// transactions share the cluster.
func settled(t *testing.T, s *eventstore.Store, q eventstore.Query, n int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, err := s.ReadQuery(context.Background(), q, eventstore.Position{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d events, want %d", len(events), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var everything = eventstore.Query{Items: []eventstore.QueryItem{{}}}

// bothModes runs f with group commit off and on.
func bothModes(t *testing.T, f func(t *testing.T, group bool)) {
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			t.Parallel()
			f(t, group)
		})
	}
}

func TestTagsAreStoredAndRead(t *testing.T) {
	bothModes(t, func(t *testing.T, group bool) {
		s, _ := newStore(t, eventstore.Options{GroupCommit: group})
		ctx := context.Background()
		one := mustAppend(t, s, "course-1", eventstore.NoStream(), tagged("CourseDefined", "course:1"))
		many := mustAppend(t, s, "course-1", eventstore.Exactly(1), tagged("StudentSubscribed", "course:1", "student:7"), tagged("Noted"), tagged("StudentSubscribed", "student:8", "course:1"))
		multi, err := s.AppendMulti(ctx, []eventstore.StreamAppend{
			{StreamID: "student-9", Events: []eventstore.EventData{tagged("StudentRegistered", "student:9")}},
			{StreamID: "course-1", Expected: eventstore.Exactly(4), Events: []eventstore.EventData{tagged("StudentSubscribed", "course:1", "student:9")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"course:1"}, {"course:1", "student:7"}, nil, {"student:8", "course:1"}, {"course:1", "student:9"}}
		slice, err := s.ReadStream(ctx, "course-1", eventstore.ReadStreamOptions{Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(slice.Events) != len(want) {
			t.Fatalf("read %d events, want %d", len(slice.Events), len(want))
		}
		for i, e := range slice.Events {
			if !slices.Equal(e.Tags, want[i]) {
				t.Errorf("event %d: tags %q, want %q", i+1, e.Tags, want[i])
			}
		}
		appended := append(append(one.Events, many.Events...), multi[1].Events...)
		for i, e := range appended {
			if !slices.Equal(e.Tags, want[i]) {
				t.Errorf("appended event %d: tags %q, want %q", i+1, e.Tags, want[i])
			}
		}
		all := settled(t, s, everything, 6)
		if len(all) != 6 || !slices.Equal(all[len(all)-2].Tags, []string{"student:9"}) && !slices.Equal(all[len(all)-1].Tags, []string{"student:9"}) {
			t.Errorf("allEvents tags: %+v", all)
		}
	})
}

func TestAppendRefusesBadTags(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	many := make([]string, eventstore.MaxTags+1)
	for i := range many {
		many[i] = fmt.Sprintf("t:%d", i)
	}
	long := string(make([]byte, eventstore.MaxTagLen+1))
	for name, tags := range map[string][]string{
		"too many":      many,
		"empty":         {"a", ""},
		"too long":      {long},
		"control":       {"a\x1fb"},
		"not utf-8":     {"\xff"},
		"twice":         {"a", "b", "a"},
		"newline":       {"a\nb"},
		"long but utf8": {string(slices.Repeat([]rune{'é'}, 129))},
	} {
		_, err := s.Append(context.Background(), "x-1", eventstore.Any(), []eventstore.EventData{tagged("X", tags...)})
		var v *eventstore.ValidationError
		if !errors.As(err, &v) || v.Field[:len("events[0].tags")] != "events[0].tags" {
			t.Errorf("%s: got %v, want a ValidationError on events[0].tags", name, err)
		}
	}
	if events, _ := counts(t, pool); events != 0 {
		t.Errorf("refused appends wrote %d events", events)
	}
	// At the limits, accepted.
	ok := make([]string, eventstore.MaxTags)
	for i := range ok {
		ok[i] = fmt.Sprintf("%0*d", eventstore.MaxTagLen, i)
	}
	mustAppend(t, s, "x-1", eventstore.Any(), tagged("X", ok...))
}

// TestReadQueryMatchesTheSpecification compares ReadQuery with a filter over ReadAll for
// queries of every shape, on events with random types and tags.
func TestReadQueryMatchesTheSpecification(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, eventstore.Options{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"A", "B", "C"}
	tags := []string{"x:1", "x:2", "y:1", "y:2"}
	for i := range 60 {
		var ts []string
		for _, tag := range tags {
			if rng.IntN(3) == 0 {
				ts = append(ts, tag)
			}
		}
		mustAppend(t, s, fmt.Sprintf("s-%d", i%7), eventstore.Any(), tagged(types[rng.IntN(len(types))], ts...))
	}
	all := settled(t, s, everything, 60)
	for name, q := range map[string]eventstore.Query{
		"no items":             query(),
		"everything":           query(eventstore.QueryItem{}),
		"one type":             query(eventstore.QueryItem{Types: []string{"A"}}),
		"two types":            query(eventstore.QueryItem{Types: []string{"A", "C"}}),
		"one tag":              query(eventstore.QueryItem{Tags: []string{"x:1"}}),
		"two tags (and)":       query(eventstore.QueryItem{Tags: []string{"x:1", "y:2"}}),
		"types and tags":       query(eventstore.QueryItem{Types: []string{"B"}, Tags: []string{"y:1"}}),
		"two items (or)":       query(eventstore.QueryItem{Types: []string{"A"}, Tags: []string{"x:2"}}, eventstore.QueryItem{Tags: []string{"y:2", "x:1"}}),
		"an unknown tag":       query(eventstore.QueryItem{Tags: []string{"z:9"}}),
		"items of every shape": query(eventstore.QueryItem{Types: []string{"C"}}, eventstore.QueryItem{Tags: []string{"y:1"}}, eventstore.QueryItem{Types: []string{"A", "B"}, Tags: []string{"x:1"}}),
	} {
		var want []eventstore.Position
		for _, e := range all {
			if q.Matches(e) {
				want = append(want, e.Position)
			}
		}
		// Paged by 7, as a client pages.
		var got []eventstore.Position
		var after eventstore.Position
		for {
			page, err := s.ReadQuery(ctx, q, after, 7)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, e := range page {
				if !q.Matches(e) {
					t.Errorf("%s: returned %s %s %q, which does not match", name, e.Position, e.Type, e.Tags)
				}
				got = append(got, e.Position)
			}
			if len(page) < 7 {
				break
			}
			after = page[len(page)-1].Position
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ReadQuery returned %d events, a filter over ReadAll %d", name, len(got), len(want))
		}
		if name != "no items" && name != "an unknown tag" && len(want) == 0 {
			t.Errorf("%s matches nothing: the data do not exercise it", name)
		}
	}
}

// TestReadQueryIsGapFreeUnderConcurrentWriters pages a query while writers append matching and
// other events: every matching event acknowledged is read exactly once, in one order.
func TestReadQueryIsGapFreeUnderConcurrentWriters(t *testing.T) {
	bothModes(t, func(t *testing.T, group bool) {
		s, _ := newStore(t, eventstore.Options{GroupCommit: group})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		q := query(eventstore.QueryItem{Tags: []string{"hot"}})
		var mu sync.Mutex
		acked := map[eventstore.Position]bool{}
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 40 {
					tags := []string{fmt.Sprintf("w:%d", w)}
					if i%2 == 0 {
						tags = append(tags, "hot")
					}
					res, err := s.Append(ctx, fmt.Sprintf("w%d-%d", w, i%3), eventstore.Any(), []eventstore.EventData{tagged("T", tags...)})
					if err != nil {
						t.Error(err)
						return
					}
					if i%2 == 0 {
						mu.Lock()
						acked[res.Position] = true
						mu.Unlock()
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		seen := map[eventstore.Position]bool{}
		var after eventstore.Position
		finished := false
		deadline := time.Now().Add(time.Minute)
		for {
			page, err := s.ReadQuery(ctx, q, after, 5)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				if seen[e.Position] {
					t.Fatalf("read %s twice", e.Position)
				}
				if e.Position.Compare(after) <= 0 {
					t.Fatalf("read %s after %s", e.Position, after)
				}
				seen[e.Position] = true
				after = e.Position
			}
			if finished && len(page) == 0 {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if len(seen) >= n || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond) // the horizon waits for other tests' transactions
			}
			select {
			case <-done:
				finished = true
			default:
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(acked) != 120 {
			t.Fatalf("%d acknowledged", len(acked))
		}
		for p := range acked {
			if !seen[p] {
				t.Errorf("acknowledged %s never read", p)
			}
		}
		if len(seen) != len(acked) {
			t.Errorf("read %d, acknowledged %d", len(seen), len(acked))
		}
	})
}

// race runs n appends at once, released together, and returns their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return errs
}

func TestConditionalAppendsWithOneQueryOneWins(t *testing.T) {
	bothModes(t, func(t *testing.T, group bool) {
		s, pool := newStore(t, eventstore.Options{GroupCommit: group})
		ctx := context.Background()
		mustAppend(t, s, "other-1", eventstore.Any(), tagged("Noise", "seat:2"))
		read := settled(t, s, everything, 1)
		after := read[len(read)-1].Position
		cond := eventstore.Condition{FailIfEventsMatch: query(eventstore.QueryItem{Types: []string{"SeatTaken"}, Tags: []string{"seat:1"}}), After: after}
		errs := race(50, func(i int) error {
			_, err := s.AppendIf(ctx, fmt.Sprintf("guest-%d", i), eventstore.Any(), []eventstore.EventData{tagged("SeatTaken", "seat:1", fmt.Sprintf("guest:%d", i))}, cond)
			return err
		})
		won := 0
		for _, err := range errs {
			var failed *eventstore.ConditionFailedError
			switch {
			case err == nil:
				won++
			case errors.As(err, &failed):
				if failed.Position.Compare(after) <= 0 {
					t.Errorf("refused for %s, not after %s", failed.Position, after)
				}
			default:
				t.Errorf("got %v, want nil or a ConditionFailedError", err)
			}
		}
		if won != 1 {
			t.Errorf("%d of 50 conditional appends succeeded, want exactly 1", won)
		}
		if events, _ := counts(t, pool); events != 2 {
			t.Errorf("%d events stored, want 2", events)
		}
	})
}

func TestConditionalAppendsWithDisjointTagsAllSucceed(t *testing.T) {
	bothModes(t, func(t *testing.T, group bool) {
		s, pool := newStore(t, eventstore.Options{GroupCommit: group})
		ctx := context.Background()
		errs := race(50, func(i int) error {
			tag := fmt.Sprintf("seat:%d", i)
			_, err := s.AppendIf(ctx, fmt.Sprintf("guest-%d", i), eventstore.NoStream(), []eventstore.EventData{tagged("SeatTaken", tag)},
				eventstore.Condition{FailIfEventsMatch: query(eventstore.QueryItem{Types: []string{"SeatTaken"}, Tags: []string{tag}})})
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
		}
		if events, _ := counts(t, pool); events != 50 {
			t.Errorf("%d events stored, want 50", events)
		}
	})
}

// inFlight begins a transaction that appends one event with tags, as Append's statement does,
// and leaves it open; commit ends it.
func inFlight(t *testing.T, pool *pgxpool.Pool, stream, typ string, tags ...string) (commit func() eventstore.Position) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"t:" + typ}
	for _, tag := range tags {
		keys = append(keys, "g:"+tag)
	}
	var first int64
	var xid uint64
	var positions []int64
	var at time.Time
	err = tx.QueryRow(ctx, pgsql.EventstoreAppendOneToAny, stream, nil, 1, uuid.New(), typ, 1, []byte(`{}`), []byte(`{}`), tags, keys).Scan(&first, &xid, &positions, &at)
	if err != nil {
		_ = tx.Rollback(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return func() eventstore.Position {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := eventstore.ParsePosition(fmt.Sprintf("%016x%016x", xid, positions[0]))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// waitForLockWait waits until a backend of the test's database waits for a lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no backend waits for a lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConditionFailsOnAMatchingAppendAfterItsRead(t *testing.T) {
	bothModes(t, func(t *testing.T, group bool) {
		s, pool := newStore(t, eventstore.Options{GroupCommit: group})
		ctx := context.Background()
		mustAppend(t, s, "course-1", eventstore.NoStream(), tagged("CourseDefined", "course:1"))
		read := settled(t, s, query(eventstore.QueryItem{Tags: []string{"course:1"}}), 1)
		after := read[0].Position
		cond := eventstore.Condition{FailIfEventsMatch: query(eventstore.QueryItem{Tags: []string{"course:1"}, Types: []string{"StudentSubscribed"}}), After: after}

		// Committed after the read: the condition fails, naming it.
		later := mustAppend(t, s, "student-1", eventstore.Any(), tagged("StudentSubscribed", "course:1", "student:1"))
		_, err := s.AppendIf(ctx, "student-2", eventstore.Any(), []eventstore.EventData{tagged("StudentSubscribed", "course:1", "student:2")}, cond)
		var failed *eventstore.ConditionFailedError
		if !errors.As(err, &failed) || failed.Position != later.Position {
			t.Fatalf("got %v, want a ConditionFailedError at %s", err, later.Position)
		}

		// In flight when the conditional append starts: it waits for it, then fails.
		read = settled(t, s, query(eventstore.QueryItem{Tags: []string{"course:1"}}), 2)
		cond.After = read[len(read)-1].Position
		commit := inFlight(t, pool, "student-3", "StudentSubscribed", "course:1", "student:3")
		result := make(chan error, 1)
		go func() {
			_, err := s.AppendIf(ctx, "student-4", eventstore.Any(), []eventstore.EventData{tagged("StudentSubscribed", "course:1", "student:4")}, cond)
			result <- err
		}()
		waitForLockWait(t, pool)
		select {
		case err := <-result:
			t.Fatalf("the conditional append did not wait for the one in flight: %v", err)
		default:
		}
		pos := commit()
		err = <-result
		if !errors.As(err, &failed) || failed.Position != pos {
			t.Fatalf("got %v, want a ConditionFailedError at %s", err, pos)
		}

		// Events that cannot match do not fail it.
		mustAppend(t, s, "student-5", eventstore.Any(), tagged("StudentSubscribed", "course:2", "student:5"))
		mustAppend(t, s, "course-1", eventstore.Any(), tagged("CourseRenamed", "course:1"))
		read = settled(t, s, everything, 5)
		cond.After = read[len(read)-1].Position
		if _, err := s.AppendIf(ctx, "student-6", eventstore.Any(), []eventstore.EventData{tagged("StudentSubscribed", "course:1", "student:6")}, cond); err != nil {
			t.Fatalf("got %v, want success", err)
		}
	})
}

func TestConditionRefusesAPositionNotYetSettled(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	commit := inFlight(t, pool, "older-1", "Seat", "seat:1")
	// This append's transaction is younger than the one in flight: its position is not one a
	// read can have returned yet.
	res := mustAppend(t, s, "younger-1", eventstore.Any(), tagged("Seat", "seat:2"))
	cond := eventstore.Condition{FailIfEventsMatch: query(eventstore.QueryItem{Tags: []string{"seat:1"}}), After: res.Position}
	_, err := s.AppendIf(ctx, "guest-1", eventstore.Any(), []eventstore.EventData{tagged("Seat", "seat:1")}, cond)
	var v *eventstore.ValidationError
	if !errors.As(err, &v) || v.Field != "condition.after" {
		t.Fatalf("got %v, want a ValidationError on condition.after", err)
	}
	if events, _ := counts(t, pool); events != 1 {
		t.Errorf("%d events stored, want 1", events)
	}
	older := commit()
	// Once settled (other tests' transactions share the cluster's horizon), a read could end
	// there, and would have seen the older event, before it: the condition holds.
	if older.Compare(res.Position) >= 0 {
		t.Fatalf("the older transaction's event %s is not before %s", older, res.Position)
	}
	settled(t, s, everything, 2)
	if _, err := s.AppendIf(ctx, "guest-1", eventstore.Any(), []eventstore.EventData{tagged("Seat", "seat:1")}, cond); err != nil {
		t.Fatalf("got %v once settled", err)
	}
}

func TestConditionMatchingEverything(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	cond := eventstore.Condition{FailIfEventsMatch: everything}
	if _, err := s.AppendIf(ctx, "a-1", eventstore.Any(), []eventstore.EventData{tagged("First")}, cond); err != nil {
		t.Fatalf("on an empty log: %v", err)
	}
	if _, err := s.AppendIf(ctx, "a-1", eventstore.Any(), []eventstore.EventData{tagged("Second")}, cond); !errors.Is(err, eventstore.ErrConditionFailed) {
		t.Fatalf("got %v, want ErrConditionFailed", err)
	}
	all := settled(t, s, everything, 1)
	cond.After = all[len(all)-1].Position
	// An append in flight is waited for (the table lock), then counted.
	commit := inFlight(t, pool, "b-1", "Other")
	result := make(chan error, 1)
	go func() {
		_, err := s.AppendIf(ctx, "a-1", eventstore.Any(), []eventstore.EventData{tagged("Third")}, cond)
		result <- err
	}()
	waitForLockWait(t, pool)
	commit()
	if err := <-result; !errors.Is(err, eventstore.ErrConditionFailed) {
		t.Fatalf("got %v, want ErrConditionFailed", err)
	}
	// A query without items matches nothing: never fails.
	if _, err := s.AppendIf(ctx, "a-1", eventstore.Any(), []eventstore.EventData{tagged("Fourth")}, eventstore.Condition{}); err != nil {
		t.Fatal(err)
	}
	if events, _ := counts(t, pool); events != 3 {
		t.Errorf("%d events stored, want 3", events)
	}
}

func TestConditionalAppendRepeatsBeforeItsCondition(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	id := uuid.New()
	e := tagged("Registered", "email:h1")
	e.ID = id
	cond := eventstore.Condition{FailIfEventsMatch: query(eventstore.QueryItem{Tags: []string{"email:h1"}})}
	first, err := s.AppendIf(ctx, "user-1", eventstore.NoStream(), []eventstore.EventData{e}, cond)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AppendIf(ctx, "user-1", eventstore.NoStream(), []eventstore.EventData{e}, cond)
	if err != nil || !again.Repeated || again.Position != first.Position {
		t.Fatalf("repeat: %+v, %v; want the first result, repeated", again, err)
	}
	// Another append with that tag is refused by the condition.
	if _, err := s.AppendIf(ctx, "user-2", eventstore.NoStream(), []eventstore.EventData{tagged("Registered", "email:h1")}, cond); !errors.Is(err, eventstore.ErrConditionFailed) {
		t.Fatalf("got %v, want ErrConditionFailed", err)
	}
	// Same id, other content: a duplicate, not a repeat.
	e.Tags = []string{"email:h2"}
	if _, err := s.AppendIf(ctx, "user-1", eventstore.NoStream(), []eventstore.EventData{e}, cond); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("got %v, want ErrDuplicateEventID", err)
	}
	if events, _ := counts(t, pool); events != 1 {
		t.Errorf("%d events stored, want 1", events)
	}
}

func TestConditionalMultiStreamAppendIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	mustAppend(t, s, "product-1", eventstore.NoStream(), tagged("ProductAdded", "product:1"))
	mustAppend(t, s, "product-2", eventstore.NoStream(), tagged("ProductAdded", "product:2"))
	all := settled(t, s, everything, 2)
	after := all[len(all)-1].Position
	cond := &eventstore.Condition{FailIfEventsMatch: query(eventstore.QueryItem{Tags: []string{"product:1"}}, eventstore.QueryItem{Tags: []string{"product:2"}}), After: after}
	parts := func(v1, v2, vo int64) []eventstore.StreamAppend {
		return []eventstore.StreamAppend{
			{StreamID: "product-1", Expected: eventstore.Exactly(v1), Events: []eventstore.EventData{tagged("StockReserved", "product:1")}},
			{StreamID: "order-1", Expected: eventstore.Exactly(vo), Events: []eventstore.EventData{tagged("OrderCreated", "order:1")}},
			{StreamID: "product-2", Expected: eventstore.Exactly(v2)},
		}
	}
	before, _ := counts(t, pool)
	for name, ps := range map[string][]eventstore.StreamAppend{
		"first":  parts(7, 1, 0),
		"second": parts(1, 1, 3),
		"check":  parts(1, 5, 0),
	} {
		_, err := s.AppendMultiIf(ctx, ps, cond)
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Errorf("%s: got %v, want ErrWrongExpectedVersion", name, err)
		}
	}
	if now, _ := counts(t, pool); now != before {
		t.Fatalf("refused appends wrote %d events", now-before)
	}
	res, err := s.AppendMultiIf(ctx, parts(1, 1, 0), cond)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].NextExpectedVersion != 2 || res[1].NextExpectedVersion != 1 || res[2].NextExpectedVersion != 1 || len(res[2].Events) != 0 {
		t.Fatalf("results: %+v", res)
	}
	// The same call again with fresh ids: its condition now fails on its own events.
	if _, err := s.AppendMultiIf(ctx, parts(2, 1, 1), cond); !errors.Is(err, eventstore.ErrConditionFailed) {
		t.Fatalf("got %v, want ErrConditionFailed", err)
	}
	if now, _ := counts(t, pool); now != before+2 {
		t.Fatalf("%d events written, want 2", now-before)
	}
}
