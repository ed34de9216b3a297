package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/eventstore"
)

func readAll(t *testing.T, s *eventstore.Store, opts eventstore.ReadAllOptions) []eventstore.RecordedEvent {
	t.Helper()
	events, err := s.ReadAll(context.Background(), opts)
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	return events
}

// walk pages through the global order from the start and returns what it saw.
func walk(t *testing.T, s *eventstore.Store, page int, opts eventstore.ReadAllOptions) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	for {
		opts.Max = page
		events := readAll(t, s, opts)
		all = append(all, events...)
		if len(events) < page {
			return all
		}
		// resume from the opaque cursor, as a client would
		next, err := eventstore.ParsePosition(events[len(events)-1].Position.String())
		if err != nil {
			t.Fatal(err)
		}
		opts.After = next
	}
}

// waitVisible waits until the global order shows p. Reads of the global order wait for every
// older transaction in the cluster, and other tests run transactions in the same cluster.
func waitVisible(t *testing.T, s *eventstore.Store, p eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events := readAll(t, s, eventstore.ReadAllOptions{Max: eventstore.DefaultMaxReadCount})
		if len(events) > 0 && events[len(events)-1].Position.Compare(p) >= 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("position %v not visible after 30s", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func summary(events []eventstore.RecordedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s@%d:%s", e.StreamID, e.Version, e.Type)
	}
	return out
}

func TestReadAllPagesAndFilters(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, eventstore.Options{})
	mustAppend(t, s, "order-1", eventstore.NoStream(), ev("OrderCreated", `{}`), ev("OrderPaid", `{}`))
	mustAppend(t, s, "user-1", eventstore.NoStream(), ev("UserRegistered", `{}`))
	mustAppend(t, s, "order-2", eventstore.NoStream(), ev("OrderCreated", `{}`))
	mustAppend(t, s, "order-1", eventstore.Exactly(2), ev("OrderShipped", `{}`))
	mustAppend(t, s, "orderline-1", eventstore.NoStream(), ev("OrderCreated", `{}`))     // category "orderline", not "order"
	last := mustAppend(t, s, "standalone", eventstore.NoStream(), ev("Note", `{"x":1}`)) // its own category
	waitVisible(t, s, last.Position)

	tests := []struct {
		name string
		opts eventstore.ReadAllOptions
		want []string
	}{
		{"everything", eventstore.ReadAllOptions{}, []string{
			"order-1@1:OrderCreated", "order-1@2:OrderPaid", "user-1@1:UserRegistered", "order-2@1:OrderCreated",
			"order-1@3:OrderShipped", "orderline-1@1:OrderCreated", "standalone@1:Note"}},
		{"category", eventstore.ReadAllOptions{Category: "order"}, []string{
			"order-1@1:OrderCreated", "order-1@2:OrderPaid", "order-2@1:OrderCreated", "order-1@3:OrderShipped"}},
		{"category without dash", eventstore.ReadAllOptions{Category: "standalone"}, []string{"standalone@1:Note"}},
		{"types", eventstore.ReadAllOptions{Types: []string{"OrderCreated", "UserRegistered"}}, []string{
			"order-1@1:OrderCreated", "user-1@1:UserRegistered", "order-2@1:OrderCreated", "orderline-1@1:OrderCreated"}},
		{"category and types", eventstore.ReadAllOptions{Category: "order", Types: []string{"OrderCreated"}}, []string{
			"order-1@1:OrderCreated", "order-2@1:OrderCreated"}},
		{"nothing matches", eventstore.ReadAllOptions{Category: "invoice"}, []string{}},
	}
	for _, tt := range tests {
		for _, page := range []int{1, 2, 100} {
			t.Run(fmt.Sprintf("%s/page %d", tt.name, page), func(t *testing.T) {
				got := summary(walk(t, s, page, tt.opts))
				if !slices.Equal(got, tt.want) {
					t.Errorf("got  %v\nwant %v", got, tt.want)
				}
			})
		}
	}

	all := readAll(t, s, eventstore.ReadAllOptions{Max: 100})
	for i := 1; i < len(all); i++ {
		a, b := all[i-1].Position, all[i].Position
		if a.Compare(b) >= 0 || b.Compare(a) <= 0 || a.String() >= b.String() {
			t.Errorf("positions out of order: %s then %s", a, b)
		}
	}
	after := readAll(t, s, eventstore.ReadAllOptions{After: all[3].Position, Max: 100})
	if !slices.Equal(summary(after), summary(all[4:])) {
		t.Errorf("after the 4th event: %v", summary(after))
	}
	if len(all[0].Data) == 0 || all[6].Data == nil || string(all[6].Data) != `{"x": 1}` || all[0].RecordedAt.IsZero() {
		t.Errorf("read events lack content: %+v", all[6])
	}
}

func TestReadAllRefusesBadInput(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, eventstore.Options{MaxReadCount: 50})
	for _, opts := range []eventstore.ReadAllOptions{
		{Max: 0}, {Max: -1}, {Max: 51}, {Max: 10, Category: "bad\x00"}, {Max: 10, Types: []string{""}},
	} {
		if _, err := s.ReadAll(context.Background(), opts); !isInvalid(err) {
			t.Errorf("ReadAll(%+v): %v, want ErrInvalidInput", opts, err)
		}
	}
	for _, opts := range []eventstore.ReadStreamOptions{{Max: 0}, {Max: 51}, {Max: 1, From: -1}} {
		if _, err := s.ReadStream(context.Background(), "order-1", opts); !isInvalid(err) {
			t.Errorf("ReadStream(%+v): %v, want ErrInvalidInput", opts, err)
		}
	}
}

func TestParsePosition(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"x", "0000000000000001000000000000000", "00000000000000010000000000000001a", "0000000000000001000000000000000G",
		"0000000000000001000000000000000A", // upper case does not sort like the cursors the store hands out
		"00000000000000000000000000000000", // the zero position is spelled ""
		"0000000000000001ffffffffffffffff", // sequence past int64
	} {
		if _, err := eventstore.ParsePosition(bad); !isInvalid(err) {
			t.Errorf("ParsePosition(%q): %v, want ErrInvalidInput", bad, err)
		}
	}
	if p, err := eventstore.ParsePosition(""); err != nil || !p.IsZero() {
		t.Errorf(`ParsePosition("") = %v, %v`, p, err)
	}
	p, err := eventstore.ParsePosition("00000000000002a0000000000000002b")
	if err != nil || p.String() != "00000000000002a0000000000000002b" {
		t.Errorf("round trip: %v, %v", p, err)
	}
	var q eventstore.Position
	if err := json.Unmarshal([]byte(`"00000000000002a0000000000000002b"`), &q); err != nil || q != p {
		t.Errorf("json: %v, %v", q, err)
	}
}

func isInvalid(err error) bool {
	var v *eventstore.ValidationError
	return err != nil && asValidation(err, &v)
}

// TestReadAllHoldsBackBehindOpenTransactions is the no-gap rule at its smallest: a transaction
// that began appending first but commits last must still be read first, and never skipped.
// Reading in plain position order fails this test: the reader passes the later event and never
// comes back for the earlier one.
func TestReadAllHoldsBackBehindOpenTransactions(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Rollback(ctx) }()
	// what an append writes, in a transaction the test controls
	appendInTx := func(tx pgx.Tx, stream string) {
		t.Helper()
		if _, err := tx.Exec(ctx, `INSERT INTO streams (stream_id, version) VALUES ($1, 1)`, stream); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO events (event_id, stream_id, version, type, data) VALUES ($1, $2, 1, 'Slow', '{}')`, uuid.New(), stream)
		if err != nil {
			t.Fatal(err)
		}
	}
	appendInTx(slow, "order-slow")
	fast := mustAppend(t, s, "order-fast", eventstore.NoStream(), ev("Fast", `{}`))

	// the reader pages as a client would: from its cursor
	var seen []eventstore.RecordedEvent
	var cursor eventstore.Position
	read := func() {
		events := readAll(t, s, eventstore.ReadAllOptions{After: cursor, Max: 10})
		if len(events) > 0 {
			cursor = events[len(events)-1].Position
		}
		seen = append(seen, events...)
	}
	// readUntil pages until the reader holds n events: transactions of tests running alongside
	// may hold the global order back a moment longer.
	readUntil := func(n int) {
		for deadline := time.Now().Add(30 * time.Second); len(seen) < n && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			read()
		}
	}
	read()
	if len(seen) != 0 {
		t.Fatalf("read %v while an older transaction is still open", summary(seen))
	}
	// operators can see who holds the global order back
	var slowPID int
	if err := slow.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&slowPID); err != nil {
		t.Fatal(err)
	}
	holders, err := s.HeldBackBy(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(holders, func(h eventstore.Holder) bool {
		return h.PID == slowPID && h.State == "idle in transaction" && !h.Since.IsZero()
	}) {
		t.Errorf("HeldBackBy = %+v, lacks the open transaction of pid %d", holders, slowPID)
	}
	// the fast event is visible to stream reads at once; only the global order waits
	if slice, err := s.ReadStream(ctx, "order-fast", eventstore.ReadStreamOptions{Max: 1}); err != nil || len(slice.Events) != 1 {
		t.Fatalf("stream read of the committed event: %v, %v", slice, err)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	readUntil(2)
	if got := summary(seen); !slices.Equal(got, []string{"order-slow@1:Slow", "order-fast@1:Fast"}) {
		t.Fatalf("after the commit the reader saw %v", got)
	}
	if seen[1].Position != fast.Position {
		t.Errorf("the fast event's position reads as %v, append said %v", seen[1].Position, fast.Position)
	}

	// a rolled-back append never appears and holds nothing back once it ends
	aborted, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendInTx(aborted, "order-aborted")
	mustAppend(t, s, "order-after", eventstore.NoStream(), ev("After", `{}`))
	if err := aborted.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	readUntil(3)
	read() // and nothing more
	if got := summary(seen[2:]); !slices.Equal(got, []string{"order-after@1:After"}) {
		t.Errorf("after a rollback the reader saw %v", got)
	}
}

// TestReadAllNoGapsUnderConcurrentWriters runs writers that commit in whatever order PostgreSQL
// lets them while readers page through the global order, and checks that every reader sees
// every acknowledged event exactly once, all in the same order.
//
// It runs with a transaction per append and with group commit, where many appends share one.
func TestReadAllNoGapsUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]eventstore.Options{
		"a transaction per append": {},
		"group commit":             {GroupCommit: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			readAllNoGapsUnderConcurrentWriters(t, opts)
		})
	}
}

func readAllNoGapsUnderConcurrentWriters(t *testing.T, opts eventstore.Options) {
	const (
		writers         = 10
		appendsByWriter = 120
		readers         = 4
		streams         = 40
	)
	s, _ := newStore(t, opts)
	if opts.GroupCommit {
		defer func() {
			if batches, appends := s.GroupStats(); appends == batches {
				t.Errorf("group commit: %d batches carried %d appends; no two appends shared one", batches, appends)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	acked := make(chan eventstore.RecordedEvent, writers*appendsByWriter*4)
	var writersWG sync.WaitGroup
	writersDone := make(chan struct{})
	errs := make(chan error, writers+readers)
	for w := 0; w < writers; w++ {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42)) //nolint:gosec // test data
			for i := 0; i < appendsByWriter; i++ {
				batch := make([]eventstore.EventData, 1+rng.IntN(4))
				for j := range batch {
					batch[j] = ev(fmt.Sprintf("T%d", j), fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				}
				res, err := s.Append(ctx, fmt.Sprintf("gap-%d", rng.IntN(streams)), eventstore.Any(), batch)
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				for _, e := range res.Events {
					acked <- e
				}
			}
		}()
	}
	go func() { writersWG.Wait(); close(writersDone) }()

	seen := make([][]eventstore.RecordedEvent, readers)
	var readersWG sync.WaitGroup
	for r := 0; r < readers; r++ {
		readersWG.Add(1)
		go func() {
			defer readersWG.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7)) //nolint:gosec // test data
			var cursor eventstore.Position
			var stalledSince time.Time
			for {
				done := false
				select {
				case <-writersDone:
					done = true
				default:
				}
				events, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: cursor, Max: 1 + rng.IntN(25)})
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				seen[r] = append(seen[r], events...)
				if len(events) > 0 {
					cursor = events[len(events)-1].Position
					stalledSince = time.Time{}
					continue
				}
				// Nothing new: once every writer has returned, stop when all is read, or when the
				// global order has not moved for a while (a skipped event never turns up; the
				// checks below then say what is missing).
				if done {
					if stalledSince.IsZero() {
						stalledSince = time.Now()
					}
					if len(seen[r]) >= len(acked) || time.Since(stalledSince) > 20*time.Second {
						return
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	readersWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(acked)

	want := map[uuid.UUID]eventstore.RecordedEvent{}
	for e := range acked {
		want[e.ID] = e
	}
	if len(want) == 0 {
		t.Fatal("no events were appended")
	}
	for r, events := range seen {
		got := map[uuid.UUID]int{}
		for _, e := range events {
			got[e.ID]++
		}
		missing := 0
		for id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		if missing > 0 || len(got) != len(events) {
			t.Fatalf("reader %d missed %d of %d acknowledged events and read %d more than once", r, missing, len(want), len(events)-len(got))
		}
		lastVersion := map[string]int64{}
		for i, e := range events {
			a, ok := want[e.ID]
			if !ok {
				t.Fatalf("reader %d saw event %s that no writer appended", r, e.ID)
			}
			if a.Position != e.Position || a.Version != e.Version || a.StreamID != e.StreamID {
				t.Fatalf("reader %d: event %s read as %s@%d %v, appended as %s@%d %v", r, e.ID, e.StreamID, e.Version, e.Position, a.StreamID, a.Version, a.Position)
			}
			if i > 0 && events[i-1].Position.Compare(e.Position) >= 0 {
				t.Fatalf("reader %d: position %v after %v", r, e.Position, events[i-1].Position)
			}
			if e.Version != lastVersion[e.StreamID]+1 {
				t.Fatalf("reader %d: %s@%d follows version %d of its stream", r, e.StreamID, e.Version, lastVersion[e.StreamID])
			}
			lastVersion[e.StreamID] = e.Version
		}
		if r > 0 && !slices.EqualFunc(events, seen[0], func(a, b eventstore.RecordedEvent) bool { return a.ID == b.ID }) {
			t.Fatalf("readers 0 and %d saw different orders", r)
		}
	}
	t.Logf("%d events by %d writers, read by %d readers, each exactly once and in one order", len(want), writers, readers)
}
