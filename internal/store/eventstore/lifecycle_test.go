package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// row is an event row as the table holds it: where it sits in the global order.
type row struct {
	stream   string
	version  int64
	tx, pos  string
	typ      string
	recorded time.Time
}

// rows returns every event row, in the global order.
func rows(t *testing.T, pool *pgxpool.Pool) []row {
	t.Helper()
	r, err := pool.Query(context.Background(), `SELECT stream_id, version, transaction_id::text, position::text, type, recorded_at FROM events ORDER BY transaction_id, position`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []row
	for r.Next() {
		var x row
		if err := r.Scan(&x.stream, &x.version, &x.tx, &x.pos, &x.typ, &x.recorded); err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func versions(events []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

func wantDeleted(t *testing.T, what string, err error, version int64) {
	t.Helper()
	var del *eventstore.StreamDeletedError
	if !errors.As(err, &del) || del.Version != version || !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("%s: %v, want the stream deleted at version %d", what, err, version)
	}
}

// Deleting a stream appends its tombstone; reads and appends then say the stream is deleted,
// the log keeps every event in place, and an append expecting no stream recreates it, its
// versions going on after the tombstone.
func TestDeleteStreamThenRecreate(t *testing.T) {
	t.Parallel()
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group-commit=%v", group), func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t, eventstore.Options{GroupCommit: group})
			ctx := context.Background()
			mustAppend(t, s, "cart-1", eventstore.NoStream(), ev("Added", `{"n":1}`), ev("Added", `{"n":2}`), ev("Added", `{"n":3}`))
			mustAppend(t, s, "cart-2", eventstore.NoStream(), ev("Added", `{}`))
			before := rows(t, pool)

			if _, err := s.DeleteStream(ctx, "cart-1", eventstore.Exactly(2)); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Errorf("delete at the wrong version: %v", err)
			}
			if _, err := s.DeleteStream(ctx, "cart-none", eventstore.Any()); !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Errorf("delete of a stream without events: %v", err)
			}
			if got := rows(t, pool); len(got) != len(before) {
				t.Fatalf("refused deletions wrote: %d rows, had %d", len(got), len(before))
			}
			res, err := s.DeleteStream(ctx, "cart-1", eventstore.Exactly(3))
			if err != nil {
				t.Fatal(err)
			}
			if res.NextExpectedVersion != 4 || len(res.Events) != 1 || res.Events[0].Type != eventstore.StreamDeletedType {
				t.Fatalf("delete result = %+v", res)
			}

			_, err = s.ReadStream(ctx, "cart-1", eventstore.ReadStreamOptions{Max: 10})
			wantDeleted(t, "read", err, 4)
			info, err := s.Stream(ctx, "cart-1")
			if err != nil || !info.Deleted || info.Version != 4 {
				t.Errorf("stream info = %+v, %v", info, err)
			}
			for _, exp := range []eventstore.ExpectedVersion{eventstore.Any(), eventstore.Exactly(4), eventstore.Exactly(3)} {
				_, err := s.Append(ctx, "cart-1", exp, []eventstore.EventData{ev("Added", `{}`)})
				wantDeleted(t, "append expecting "+exp.String(), err, 4)
			}
			_, err = s.AppendMulti(ctx, []eventstore.StreamAppend{
				{StreamID: "cart-2", Expected: eventstore.Exactly(1), Events: []eventstore.EventData{ev("Added", `{}`)}},
				{StreamID: "cart-1", Expected: eventstore.Any(), Events: []eventstore.EventData{ev("Added", `{}`)}},
			})
			wantDeleted(t, "multi-stream append", err, 4)
			_, err = s.DeleteStream(ctx, "cart-1", eventstore.Any())
			wantDeleted(t, "second delete", err, 4)
			if _, err := s.SetStreamMetadata(ctx, "cart-1", eventstore.StreamMetadata{MaxCount: 5}); !errors.Is(err, eventstore.ErrStreamDeleted) {
				t.Errorf("settings of a deleted stream: %v", err)
			}

			// The log: every row in place, and only the tombstone added.
			after := rows(t, pool)
			if len(after) != len(before)+1 || after[len(after)-1].typ != eventstore.StreamDeletedType {
				t.Fatalf("log after the refusals: %+v", after)
			}
			for i := range before {
				if after[i] != before[i] {
					t.Errorf("row %d moved: %+v, was %+v", i, after[i], before[i])
				}
			}

			// Recreated: versions go on after the tombstone; the old events stay hidden.
			re, err := s.Append(ctx, "cart-1", eventstore.NoStream(), []eventstore.EventData{ev("Added", `{"n":"new"}`)})
			if err != nil || re.NextExpectedVersion != 5 || re.Events[0].Version != 5 {
				t.Fatalf("recreate: %+v %v", re, err)
			}
			slice, err := s.ReadStream(ctx, "cart-1", eventstore.ReadStreamOptions{Max: 10})
			if err != nil || slice.Version != 5 || slice.FirstVersion != 5 || fmt.Sprint(versions(slice.Events)) != "[5]" {
				t.Errorf("read after recreating = %+v, %v", slice, err)
			}
			if _, err := s.Append(ctx, "cart-1", eventstore.Exactly(5), []eventstore.EventData{ev("Added", `{}`)}); err != nil {
				t.Errorf("append after recreating: %v", err)
			}
			if _, err := s.Append(ctx, "cart-1", eventstore.NoStream(), []eventstore.EventData{ev("Added", `{}`)}); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Errorf("a second recreation: %v, want a version conflict", err)
			}
			if got := rows(t, pool); len(got) != len(before)+3 {
				t.Errorf("the log holds %d rows, want %d", len(got), len(before)+3)
			}
		})
	}
}

// Event types starting with $ belong to the store.
func TestReservedEventTypesAreRefused(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	_, err := s.Append(ctx, "fake-1", eventstore.Any(), []eventstore.EventData{ev("Ok", `{}`), ev(eventstore.StreamDeletedType, `{}`)})
	var v *eventstore.ValidationError
	if !errors.As(err, &v) || v.Field != "events[1].type" {
		t.Errorf("append of a tombstone: %v", err)
	}
	_, err = s.AppendMulti(ctx, []eventstore.StreamAppend{{StreamID: "fake-2", Expected: eventstore.Any(), Events: []eventstore.EventData{ev("$Other", `{}`)}}})
	if !errors.As(err, &v) || v.Field != "streams[0].events[0].type" {
		t.Errorf("multi-stream append of a reserved type: %v", err)
	}
	if n, _ := counts(t, pool); n != 0 {
		t.Errorf("%d events written", n)
	}
}

// Appends to deleted streams in one group commit: the refused one is refused, a recreation
// recreates, and the others commit.
func TestGroupCommitBatchWithDeletedStreams(t *testing.T) {
	t.Parallel()
	g := newGroupRig(t)
	for _, stream := range []string{"gdel-a", "gdel-b"} {
		if _, err := g.s.Append(g.ctx, stream, eventstore.Any(), []eventstore.EventData{event(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := g.s.DeleteStream(g.ctx, stream, eventstore.Exactly(1)); err != nil {
			t.Fatal(err)
		}
	}
	out := g.batch(
		g.appendOf("gdel-ok", eventstore.Any(), event(`{"a":1}`)),
		g.appendOf("gdel-a", eventstore.Any(), event(`{"refused":1}`)),
		g.appendOf("gdel-b", eventstore.NoStream(), event(`{"recreated":1}`)),
		g.appendOf("gdel-ok", eventstore.Exactly(1), event(`{"a":2}`)),
	)
	if out[0].err != nil || out[3].err != nil || out[3].res.NextExpectedVersion != 2 {
		t.Errorf("good appends: %+v %v / %+v %v", out[0].res, out[0].err, out[3].res, out[3].err)
	}
	wantDeleted(t, "append to a deleted stream", out[1].err, 2)
	if out[2].err != nil || out[2].res.NextExpectedVersion != 3 {
		t.Errorf("recreation: %+v %v", out[2].res, out[2].err)
	}
	for stream, want := range map[string]int{"gdel-ok": 2, "gdel-a": 2, "gdel-b": 3} {
		if n := g.storedIn(stream); n != want {
			t.Errorf("%s holds %d events, want %d", stream, n, want)
		}
	}
}

// Settings hide events from stream reads at once, forward and backward; truncateBefore only
// moves forward.
func TestStreamMetadataHidesAtOnce(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	for range 10 {
		mustAppend(t, s, "log-1", eventstore.Any(), ev("Line", `{}`))
	}
	read := func(backward bool) (eventstore.StreamSlice, string) {
		t.Helper()
		slice, err := s.ReadStream(ctx, "log-1", eventstore.ReadStreamOptions{Max: 100, Backward: backward})
		if err != nil {
			t.Fatal(err)
		}
		return slice, fmt.Sprint(versions(slice.Events))
	}
	for _, tc := range []struct {
		name              string
		md                eventstore.StreamMetadata
		forward, backward string
		first             int64
	}{
		{"maxCount", eventstore.StreamMetadata{MaxCount: 3}, "[8 9 10]", "[10 9 8]", 8},
		{"truncateBefore", eventstore.StreamMetadata{TruncateBefore: 5}, "[5 6 7 8 9 10]", "[10 9 8 7 6 5]", 5},
		{"both", eventstore.StreamMetadata{TruncateBefore: 5, MaxCount: 8}, "[5 6 7 8 9 10]", "[10 9 8 7 6 5]", 5},
		{"maxCount wins", eventstore.StreamMetadata{TruncateBefore: 5, MaxCount: 2}, "[9 10]", "[10 9]", 9},
	} {
		if _, err := s.SetStreamMetadata(ctx, "log-1", tc.md); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		slice, fwd := read(false)
		_, bwd := read(true)
		if fwd != tc.forward || bwd != tc.backward || slice.FirstVersion != tc.first || slice.Version != 10 {
			t.Errorf("%s: forward %s backward %s first %d, want %s %s %d", tc.name, fwd, bwd, slice.FirstVersion, tc.forward, tc.backward, tc.first)
		}
	}
	for _, tc := range []struct {
		md    eventstore.StreamMetadata
		field string
	}{
		{eventstore.StreamMetadata{TruncateBefore: 4}, "truncateBefore"},  // back
		{eventstore.StreamMetadata{TruncateBefore: 12}, "truncateBefore"}, // beyond version + 1
		{eventstore.StreamMetadata{TruncateBefore: 5, MaxCount: -1}, "maxCount"},
		{eventstore.StreamMetadata{TruncateBefore: 5, MaxAge: 1500 * time.Millisecond}, "maxAge"},
	} {
		_, err := s.SetStreamMetadata(ctx, "log-1", tc.md)
		var v *eventstore.ValidationError
		if !errors.As(err, &v) || v.Field != tc.field {
			t.Errorf("settings %+v: %v, want a refusal of %s", tc.md, err, tc.field)
		}
	}
	if _, err := s.SetStreamMetadata(ctx, "log-none", eventstore.StreamMetadata{MaxCount: 1}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("settings of a stream without events: %v", err)
	}

	// maxAge: events recorded before the cutoff are hidden, one by one.
	for range 4 {
		mustAppend(t, s, "aged-1", eventstore.Any(), ev("Line", `{}`))
	}
	backdate(t, pool, "aged-1", 1, 2)
	if _, err := s.SetStreamMetadata(ctx, "aged-1", eventstore.StreamMetadata{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	slice, err := s.ReadStream(ctx, "aged-1", eventstore.ReadStreamOptions{Max: 10})
	if err != nil || fmt.Sprint(versions(slice.Events)) != "[3 4]" {
		t.Errorf("read with maxAge = %v, %v", versions(slice.Events), err)
	}
	info, err := s.Stream(ctx, "aged-1")
	if err != nil || info.Metadata.MaxAge != time.Hour {
		t.Errorf("stream info = %+v, %v", info, err)
	}
}

// backdate makes the given versions of a stream look two hours old.
func backdate(t *testing.T, pool *pgxpool.Pool, stream string, versions ...int64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `UPDATE events SET recorded_at = recorded_at - interval '2 hours' WHERE stream_id = $1 AND version = ANY($2)`, stream, versions)
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination the test reads while the scavenger writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The scavenger deletes exactly the rows streams hide (truncated, capped, aged, deleted: all
// but the tombstone), in bounded batches with progress lines, and nothing else; the rows left
// keep their places in the global order.
func TestScavengerDeletesExactlyTheHiddenRows(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	appendN := func(stream string, n int) {
		for range n {
			mustAppend(t, s, stream, eventstore.Any(), ev("E", `{}`))
		}
	}
	appendN("keep-1", 3)
	appendN("cap-1", 5)
	appendN("trunc-1", 4)
	appendN("aged-1", 3)
	appendN("gone-1", 3)
	appendN("plain-1", 2)
	backdate(t, pool, "aged-1", 1, 2)
	backdate(t, pool, "keep-1", 1) // old, but its stream has no maxAge
	set := func(stream string, md eventstore.StreamMetadata) {
		if _, err := s.SetStreamMetadata(ctx, stream, md); err != nil {
			t.Fatal(err)
		}
	}
	set("cap-1", eventstore.StreamMetadata{MaxCount: 2})
	set("trunc-1", eventstore.StreamMetadata{TruncateBefore: 3})
	set("aged-1", eventstore.StreamMetadata{MaxAge: time.Hour})
	set("plain-1", eventstore.StreamMetadata{MaxCount: 5}) // hides nothing
	if _, err := s.DeleteStream(ctx, "gone-1", eventstore.Any()); err != nil {
		t.Fatal(err)
	}
	before := rows(t, pool)
	hidden := map[string]bool{"cap-1@1": true, "cap-1@2": true, "cap-1@3": true, "trunc-1@1": true, "trunc-1@2": true,
		"aged-1@1": true, "aged-1@2": true, "gone-1@1": true, "gone-1@2": true, "gone-1@3": true}
	var want []row
	for _, r := range before {
		if !hidden[fmt.Sprintf("%s@%d", r.stream, r.version)] {
			want = append(want, r)
		}
	}

	var logs syncBuffer
	sc := eventstore.NewScavenger(s, eventstore.ScavengeOptions{Batch: 2}, slog.New(slog.NewTextHandler(&logs, nil)))
	deleted, err := sc.Once(ctx)
	if err != nil || deleted != int64(len(hidden)) {
		t.Fatalf("scavenge: %d deleted, %v; want %d", deleted, err, len(hidden))
	}
	after := rows(t, pool)
	if fmt.Sprint(after) != fmt.Sprint(want) {
		t.Errorf("rows after scavenging:\n%+v\nwant:\n%+v", after, want)
	}
	if n := strings.Count(logs.String(), "scavenge progress"); n < 6 { // cap-1 and gone-1 take two batches of 2
		t.Errorf("%d progress lines, want one per batch:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "deleted=10") {
		t.Errorf("no summary line with the total:\n%s", logs.String())
	}
	if again, err := sc.Once(ctx); err != nil || again != 0 {
		t.Errorf("second pass deleted %d, %v", again, err)
	}
	// The ids of deleted events go with them; every remaining event keeps its id's record.
	var orphans, missing int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM event_ids x WHERE NOT EXISTS (SELECT FROM events e WHERE e.event_id = x.event_id)),
		(SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT FROM event_ids x WHERE x.event_id = e.event_id))`).Scan(&orphans, &missing); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 || missing != 0 {
		t.Errorf("event_ids after scavenging: %d ids of deleted events, %d events without an id", orphans, missing)
	}
	// Reads answer as before the scavenge.
	for stream, want := range map[string]string{"cap-1": "[4 5]", "trunc-1": "[3 4]", "aged-1": "[3]", "keep-1": "[1 2 3]", "plain-1": "[1 2]"} {
		slice, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Max: 10})
		if err != nil || fmt.Sprint(versions(slice.Events)) != want {
			t.Errorf("%s reads %v, %v; want %s", stream, versions(slice.Events), err, want)
		}
	}
	_, err = s.ReadStream(ctx, "gone-1", eventstore.ReadStreamOptions{Max: 10})
	wantDeleted(t, "read of the deleted stream", err, 4)
}

// cappedStream appends six events to capped-1, caps it at one, and returns the database, the
// appends, a scavenger bound by what the projections have applied, and the versions stored.
func cappedStream(t *testing.T) (*pgxpool.Pool, []eventstore.AppendResult, *eventstore.Scavenger, func() string) {
	t.Helper()
	s, pool := newStore(t, eventstore.Options{})
	var res []eventstore.AppendResult
	for range 6 {
		res = append(res, mustAppend(t, s, "capped-1", eventstore.Any(), ev("E", `{}`)))
	}
	if _, err := s.SetStreamMetadata(context.Background(), "capped-1", eventstore.StreamMetadata{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	sc := eventstore.NewScavenger(s, eventstore.ScavengeOptions{
		Applied: func(ctx context.Context, category string) (eventstore.Position, error) {
			return projection.Applied(ctx, pool, category)
		},
	}, slog.New(slog.DiscardHandler))
	stored := func() string {
		var got []int64
		for _, r := range rows(t, pool) {
			got = append(got, r.version)
		}
		return fmt.Sprint(got)
	}
	return pool, res, sc, stored
}

// The scavenger deletes nothing a projection has not applied: its bound is the oldest
// checkpoint.
func TestScavengerKeepsWhatProjectionsHaveNotApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, res, sc, stored := cappedStream(t)
	checkpoints := func(users, orders string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = CASE name WHEN 'users' THEN $1 ELSE $2 END`, users, orders); err != nil {
			t.Fatal(err)
		}
	}

	// Fresh checkpoints: nothing applied, nothing deleted.
	if n, err := sc.Once(ctx); err != nil || n != 0 || stored() != "[1 2 3 4 5 6]" {
		t.Fatalf("with no event applied: %d deleted, %v, rows %s", n, err, stored())
	}
	// The users projection has applied up to version 4, the orders one up to version 2.
	checkpoints(res[3].Position.String(), res[1].Position.String())
	if n, err := sc.Once(ctx); err != nil || n != 2 || stored() != "[3 4 5 6]" {
		t.Errorf("behind the orders projection at version 2: %d deleted, %v, rows %s", n, err, stored())
	}
	checkpoints(res[5].Position.String(), res[3].Position.String())
	if n, err := sc.Once(ctx); err != nil || n != 2 || stored() != "[5 6]" {
		t.Errorf("behind the orders projection at version 4: %d deleted, %v, rows %s", n, err, stored())
	}
	checkpoints(res[5].Position.String(), res[5].Position.String())
	if n, err := sc.Once(ctx); err != nil || n != 1 || stored() != "[6]" {
		t.Errorf("all applied: %d deleted, %v, rows %s", n, err, stored())
	}
}

// A checkpoint whose projector reads other categories does not hold the scavenger back: only
// the projectors of a stream's category, and those whose category is not known, do.
func TestScavengerWaitsOnlyForTheProjectorsOfTheCategory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, res, sc, stored := cappedStream(t)
	// Every checkpoint has applied nothing; one of them reads "capped".
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = '', category = CASE name WHEN 'users' THEN 'capped' ELSE 'elsewhere' END`); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.Once(ctx); err != nil || n != 0 || stored() != "[1 2 3 4 5 6]" {
		t.Fatalf("the capped projector has applied nothing: %d deleted, %v, rows %s", n, err, stored())
	}
	// It has applied up to version 4; the others, of other categories, still nothing.
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = $1 WHERE name = 'users'`, res[3].Position.String()); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.Once(ctx); err != nil || n != 4 || stored() != "[5 6]" {
		t.Errorf("the capped projector at version 4: %d deleted, %v, rows %s", n, err, stored())
	}
	// No projector reads "capped": nothing holds the scavenger back.
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET category = 'elsewhere'`); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.Once(ctx); err != nil || n != 1 || stored() != "[6]" {
		t.Errorf("no projector of the category: %d deleted, %v, rows %s", n, err, stored())
	}
}

// Run scavenges at once and then every interval, and returns when its context ends.
func TestScavengerRunLoopsUntilCancelled(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	mustAppend(t, s, "loop-1", eventstore.Any(), ev("E", `{}`), ev("E", `{}`))
	if _, err := s.SetStreamMetadata(ctx, "loop-1", eventstore.StreamMetadata{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	sc := eventstore.NewScavenger(s, eventstore.ScavengeOptions{Interval: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if n, _ := counts(t, pool); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hidden event was not scavenged within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A later append makes the first visible one hidden: the next interval deletes it.
	mustAppend(t, s, "loop-1", eventstore.Any(), ev("E", `{}`))
	for {
		var v int64
		if err := pool.QueryRow(context.Background(), `SELECT min(version) FROM events`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the next pass did not come within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of its context ending")
	}
}
