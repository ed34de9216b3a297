package partition_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/advisory"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/partition"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// tiny returns a store and a manager on a fresh database whose partitions span size positions
// from the first: the migration's empty partitions of a million positions are dropped and
// made again at the tiny size.
func tiny(t *testing.T, size int64) (*eventstore.Store, *partition.Manager, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	m := partition.New(pool, size, nil)
	ps, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Rows != 0 {
			t.Fatalf("fresh database: partition %s holds %d rows", p.Name, p.Rows)
		}
		if _, err := pool.Exec(ctx, "DROP TABLE "+pgx.Identifier{p.Name}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	made, err := m.Ensure(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// No projector runs here: the checkpoints say every event is applied, so that only the
	// bound and the partitions decide what is archived (TestArchiveWaitsForProjections).
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = repeat('f', 32)`); err != nil {
		t.Fatal(err)
	}
	if len(made) != 1+partition.Ahead || made[0].First != 0 || made[0].End != size {
		t.Fatalf("Ensure on an empty log made %+v, want %d partitions from [0, %d)", made, 1+partition.Ahead, size)
	}
	return eventstore.New(pool, eventstore.Options{}), m, pool
}

// appendMany appends n events, one or a few at a time, to a handful of streams, making
// partitions ahead after each append as the server's loop does.
func appendMany(t *testing.T, s *eventstore.Store, m *partition.Manager, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; {
		k := min(1+i%3, n-i)
		events := make([]eventstore.EventData, k)
		for j := range events {
			events[j] = eventstore.EventData{Type: "Noted", Data: json.RawMessage(fmt.Sprintf(`{"n": %d, "text": "event \"%d\""}`, i+j, i+j)),
				Metadata: json.RawMessage(`{"by": "test"}`)}
			if (i+j)%3 == 0 { // archives keep tags, and restores put them back
				events[j].Tags = []string{fmt.Sprintf("note:%d", i+j), "every:third"}
			}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("note-%d", i%4), eventstore.Any(), events); err != nil {
			t.Fatalf("append event %d: %v", i, err)
		}
		if _, err := m.Ensure(ctx, 0); err != nil {
			t.Fatal(err)
		}
		i += k
	}
}

// readAll reads the whole log once it holds want events: reads see only events below the
// cluster's oldest running transaction, which other tests' transactions in other databases
// hold back for a moment.
func readAll(t *testing.T, s *eventstore.Store, want int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		events := readOnce(t, s)
		if len(events) == want {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadAll returned %d events within 15 s, want %d", len(events), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readOnce(t *testing.T, s *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	var after eventstore.Position
	for {
		page, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{After: after, Max: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Appends cross partition boundaries, and the partitions made ahead keep up.
func TestAppendAcrossPartitions(t *testing.T) {
	t.Parallel()
	s, m, pool := tiny(t, 5)
	appendMany(t, s, m, 40)
	ps, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	withRows := 0
	var rows int64
	for _, p := range ps {
		if p.Rows > 0 {
			withRows++
		}
		rows += p.Rows
	}
	if withRows < 8 || rows != 40 {
		t.Fatalf("40 events in partitions of 5: %d partitions hold rows, %d rows in all; %+v", withRows, rows, ps)
	}
	next, err := m.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last := ps[len(ps)-1]; last.End <= next+partition.Ahead*5-1 {
		t.Fatalf("the last partition ends at %d; the next position is %d: not %d partitions ahead", last.End, next, partition.Ahead)
	}
	readAll(t, s, 40)
	if n := count(t, pool, `SELECT count(*) FROM event_ids`); n != 40 {
		t.Fatalf("event_ids holds %d ids, want 40", n)
	}
}

// With no partition made ahead, an append fails with an error that says so, and writes nothing.
func TestAppendWithoutPartitionFails(t *testing.T) {
	t.Parallel()
	s, m, pool := tiny(t, 5)
	ps, _ := m.List(context.Background())
	for _, p := range ps {
		if _, err := pool.Exec(context.Background(), "DROP TABLE "+pgx.Identifier{p.Name}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Append(context.Background(), "note-1", eventstore.Any(), []eventstore.EventData{{Type: "Noted", Data: json.RawMessage(`{}`)}})
	if err == nil || !strings.Contains(err.Error(), "no partition") {
		t.Fatalf("append with no partition: %v, want an error naming the missing partition", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM streams`); n != 0 {
		t.Fatalf("a failed append left %d stream rows", n)
	}
}

// An append to the stream whose id is the partition lock's key text does not wait while partition
// maintenance holds its lock: the two locks differ in class. Maintenance does wait for the held
// lock, which shows that it is the one Manager takes.
func TestAppendDoesNotWaitForPartitionMaintenance(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.Pool(t)
	s := eventstore.New(pool, eventstore.Options{})
	m := partition.New(pool, partition.DefaultSize, nil)

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(`+advisory.Partitions+`, `+advisory.PartitionsKey+`)`); err != nil {
		t.Fatal(err)
	}
	var ensureErr error
	ensured := make(chan struct{})
	go func() {
		defer close(ensured)
		_, ensureErr = m.Ensure(ctx, 0)
	}()
	defer func() {
		_ = holder.Rollback(context.WithoutCancel(ctx))
		<-ensured
	}()
	for waiting := int64(0); waiting == 0; {
		select {
		case <-ensured:
			t.Fatalf("Ensure ended while the partition lock was held: %v", ensureErr)
		case <-time.After(10 * time.Millisecond):
		}
		waiting = count(t, pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
	AND classid = `+advisory.Partitions+` AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	}

	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Append(actx, "events partitions", eventstore.Any(), []eventstore.EventData{{Type: "Noted", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatalf("append to the stream %q while partition maintenance holds its lock: %v", "events partitions", err)
	}
	select {
	case <-ensured:
		t.Fatalf("Ensure ended while the partition lock was held: %v", ensureErr)
	default:
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-ensured
	if ensureErr != nil {
		t.Fatalf("Ensure after the partition lock was let go: %v", ensureErr)
	}
}

func TestArchiveDropRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 10)
	appendMany(t, s, m, 55)
	before := readAll(t, s, 55)
	file := filepath.Join(t.TempDir(), "old.ndjson.gz")
	var lines []string
	progress := func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }

	bound, err := partition.ParseBound("30")
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Archive(ctx, bound, file, progress)
	if err != nil {
		t.Fatal(err)
	}
	mf := res.Manifest
	if mf.Count != 29 || len(mf.Partitions) != 3 || mf.Partitions[0].First != 0 || mf.Partitions[2].End != 30 {
		t.Fatalf("manifest %+v, want 29 events (positions 1..29) of [0, 10), [10, 20), [20, 30)", mf)
	}
	if !strings.Contains(res.Stopped, "[30, 40)") {
		t.Fatalf("Stopped = %q, want it to name the partition [30, 40)", res.Stopped)
	}
	if len(lines) == 0 {
		t.Fatal("no progress lines")
	}
	after := readAll(t, s, 55-29)
	var kept []eventstore.RecordedEvent
	for _, e := range before {
		if e.Position.Seq() >= 30 {
			kept = append(kept, e)
		}
	}
	if !reflect.DeepEqual(after, kept) {
		t.Fatalf("after the archive ReadAll returned %d events, want the %d at positions from 30", len(after), len(kept))
	}
	if n := count(t, pool, `SELECT count(*) FROM events WHERE position < 30`); n != 0 {
		t.Fatalf("events still holds %d rows below position 30", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM event_ids WHERE position < 30`); n != 0 {
		t.Fatalf("event_ids still holds %d ids below position 30", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_class WHERE relname LIKE 'events_p%' AND relkind = 'r' AND relname < $1`, partition.Name(30, 40)); n != 0 {
		t.Fatalf("%d archived partition tables remain", n)
	}

	// A stream whose first events were archived reads from its first remaining event.
	slice, err := s.ReadStream(ctx, "note-0", eventstore.ReadStreamOptions{Max: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(slice.Events) == 0 || slice.Events[0].Version == 1 {
		t.Fatalf("note-0 after the archive: %d events, first version %d; want its archived events gone", len(slice.Events), slice.Events[0].Version)
	}

	restored, err := m.Restore(ctx, file, progress)
	if err != nil {
		t.Fatal(err)
	}
	if restored.SHA256 != mf.SHA256 || restored.Count != mf.Count {
		t.Fatalf("restored %+v, archived %+v", restored, mf)
	}
	again := readAll(t, s, 55)
	if !reflect.DeepEqual(again, before) {
		for i := range min(len(again), len(before)) {
			if !reflect.DeepEqual(again[i], before[i]) {
				t.Fatalf("after the restore event %d is %+v, was %+v", i, again[i], before[i])
			}
		}
		t.Fatalf("after the restore ReadAll returned %d events, before the archive %d", len(again), len(before))
	}
	if n := count(t, pool, `SELECT count(*) FROM event_ids`); n != 55 {
		t.Fatalf("event_ids holds %d ids after the restore, want 55", n)
	}
	// Restored ids are ids again: repeating an archived append is recognised.
	first := before[0]
	_, err = s.Append(ctx, "note-3", eventstore.Any(), []eventstore.EventData{{ID: first.ID, Type: "Noted", Data: json.RawMessage(`{"other": true}`)}})
	var dup *eventstore.DuplicateEventIDError
	if !errors.As(err, &dup) {
		t.Fatalf("append reusing a restored event id: %v, want a DuplicateEventIDError", err)
	}

	// The same file cannot be restored twice.
	if _, err := m.Restore(ctx, file, nil); !errors.Is(err, partition.ErrOverlap) {
		t.Fatalf("second restore: %v, want ErrOverlap", err)
	}
}

// Only whole partitions that can receive no more events are archived.
func TestArchiveOnlyWholeSettledPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, _ := tiny(t, 10)
	appendMany(t, s, m, 25)

	bound, _ := partition.ParseBound("15")
	res, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "a.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Partitions) != 1 || !strings.Contains(res.Stopped, "only whole partitions") {
		t.Fatalf("bound 15: archived %+v, stopped %q; want [0, 10) only, and why [10, 20) stays", res.Manifest.Partitions, res.Stopped)
	}

	// Far past the end: the partition still receiving events stays, and so does every later one.
	bound, _ = partition.ParseBound("1000000")
	res, err = m.Archive(ctx, bound, filepath.Join(t.TempDir(), "b.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Partitions) != 1 || res.Manifest.Partitions[0].First != 10 || !strings.Contains(res.Stopped, "can still receive events") {
		t.Fatalf("bound past the end: archived %+v, stopped %q; want [10, 20) only", res.Manifest.Partitions, res.Stopped)
	}

	// Nothing left before the bound.
	bound, _ = partition.ParseBound("20")
	if _, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "c.gz"), nil); !errors.Is(err, partition.ErrNothingToArchive) {
		t.Fatalf("bound 20 after [10, 20) was archived: %v, want ErrNothingToArchive", err)
	}

	// A time bound before every event archives nothing.
	bound, _ = partition.ParseBound("2000-01-01T00:00:00Z")
	if _, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "d.gz"), nil); !errors.Is(err, partition.ErrNothingToArchive) {
		t.Fatalf("time bound before every event: %v, want ErrNothingToArchive", err)
	}
}

// rewrite decompresses an archive, changes it with f and compresses it again.
func rewrite(t *testing.T, path string, f func([]byte) []byte) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(f(text))
	_ = zw.Close()
	out := path + ".changed"
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRestoreRefusesCorruptArchives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 10)
	appendMany(t, s, m, 25)
	file := filepath.Join(t.TempDir(), "a.gz")
	bound, _ := partition.ParseBound("20")
	if _, err := m.Archive(ctx, bound, file, nil); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "cut.gz")
	if err := os.WriteFile(truncated, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"changed data": rewrite(t, file, func(b []byte) []byte { return bytes.Replace(b, []byte(`"n": 3`), []byte(`"n": 4`), 1) }),
		"dropped line": rewrite(t, file, func(b []byte) []byte { _, rest, _ := bytes.Cut(b, []byte("\n")); return rest }),
		"no manifest":  rewrite(t, file, func(b []byte) []byte { i := bytes.LastIndex(b[:len(b)-1], []byte("\n")); return b[:i+1] }),
		"cut short":    truncated,
	} {
		if _, err := m.Restore(ctx, path, nil); !errors.Is(err, partition.ErrCorrupt) {
			t.Errorf("%s: restore returned %v, want ErrCorrupt", name, err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM events WHERE position < 20`); n != 0 {
		t.Fatalf("refused restores left %d rows", n)
	}
	if _, err := m.Restore(ctx, file, nil); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM events`); n != 25 {
		t.Fatalf("after the restore events holds %d rows, want 25", n)
	}
}

// An archive that cannot write its file changes nothing: every partition stays attached.
func TestArchiveThatCannotWriteChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 10)
	appendMany(t, s, m, 25)
	before, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bound, _ := partition.ParseBound("20")
	dir := t.TempDir()
	if _, err := m.Archive(ctx, bound, filepath.Join(dir, "missing", "a.gz"), nil); err == nil {
		t.Fatal("archive into a directory that does not exist succeeded")
	}
	existing := filepath.Join(dir, "taken.gz")
	if err := os.WriteFile(existing, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Archive(ctx, bound, existing, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("archive over an existing file: %v, want it refused", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "mine" {
		t.Fatalf("the existing file now holds %q", b)
	}
	after, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("partitions after the failed archives:\n%+v\nbefore:\n%+v", after, before)
	}
	if n := count(t, pool, `SELECT count(*) FROM event_ids`); n != 25 {
		t.Fatalf("event_ids holds %d ids, want 25", n)
	}
}

// An event id appended again after its event was archived stops the restore: nothing is
// restored, rather than the id stored twice.
func TestRestoreRefusesAnEventIDStoredAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 10)
	appendMany(t, s, m, 25)
	events := readAll(t, s, 25)
	file := filepath.Join(t.TempDir(), "a.gz")
	bound, _ := partition.ParseBound("10")
	if _, err := m.Archive(ctx, bound, file, nil); err != nil {
		t.Fatal(err)
	}
	// The archived id is free again: the idempotency window ended with the archive.
	if _, err := s.Append(ctx, "other-1", eventstore.Any(), []eventstore.EventData{{ID: events[0].ID, Type: "Noted", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatalf("append reusing an archived id: %v", err)
	}
	_, err := m.Restore(ctx, file, nil)
	if err == nil || !strings.Contains(err.Error(), "stored again") {
		t.Fatalf("restore with an id stored again: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM events WHERE position < 10`); n != 0 {
		t.Fatalf("the refused restore left %d rows", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_class WHERE relname = $1`, partition.Name(0, 10)); n != 0 {
		t.Fatal("the refused restore left its partition")
	}
}

// Archiving while writers append, with partitions made ahead all along: every acknowledged
// event is either in the archive or still in the table, never both, never lost; after the
// restore the log holds each exactly once.
func TestArchiveUnderConcurrentAppendsLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 100)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[uuid.UUID]bool{}
	errs := make(chan error, 8)
	wg.Go(func() { // the server's loop, faster
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := m.Ensure(ctx, 0); err != nil {
				errs <- err
				return
			}
		}
	})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := s.Append(ctx, fmt.Sprintf("note-%d", w), eventstore.Any(), []eventstore.EventData{
					{Type: "Noted", Data: json.RawMessage(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i))}})
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				mu.Lock()
				acked[res.Events[0].ID] = true
				mu.Unlock()
			}
		})
	}
	halt := func() {
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	waitRows := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for count(t, pool, `SELECT count(*) FROM event_ids`) < n {
			if time.Now().After(deadline) {
				halt()
				t.Fatalf("fewer than %d events appended within 30 s", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitRows(250)
	file := filepath.Join(t.TempDir(), "a.gz")
	bound, _ := partition.ParseBound("1000000000")
	res, err := m.Archive(ctx, bound, file, nil)
	if err != nil {
		halt()
		t.Fatal(err)
	}
	waitRows(count(t, pool, `SELECT count(*) FROM event_ids`) + 100) // appends go on after it
	halt()
	if t.Failed() {
		return
	}
	if res.Manifest.Count == 0 || !strings.Contains(res.Stopped, "can still receive events") {
		t.Fatalf("archived %d events, stopped at %q", res.Manifest.Count, res.Stopped)
	}
	remaining := count(t, pool, `SELECT count(*) FROM events`)
	if got := res.Manifest.Count + remaining; got != int64(len(acked)) {
		t.Fatalf("%d archived + %d remaining = %d events, %d acknowledged", res.Manifest.Count, remaining, got, len(acked))
	}
	if _, err := m.Restore(ctx, file, nil); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s, len(acked))
	for _, e := range all {
		if !acked[e.ID] {
			t.Fatalf("event %s was never acknowledged", e.ID)
		}
		delete(acked, e.ID)
	}
	if len(acked) != 0 {
		t.Fatalf("%d acknowledged events are missing after the restore", len(acked))
	}
}

// A cursor bound archives the partitions whose every event is before it in the global order;
// a time bound those whose every event was recorded before it.
func TestArchiveBeforeACursorOrATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, _ := tiny(t, 10)
	appendMany(t, s, m, 35)
	events := readAll(t, s, 35)
	var at12 eventstore.Position
	for _, e := range events {
		if e.Position.Seq() == 12 {
			at12 = e.Position
		}
	}
	bound, err := partition.ParseBound(at12.String())
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "a.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Partitions) != 1 || res.Manifest.Partitions[0].End != 10 || !strings.Contains(res.Stopped, "at or after that position") {
		t.Fatalf("cursor of position 12: archived %+v, stopped %q; want [0, 10) only", res.Manifest.Partitions, res.Stopped)
	}
	if res.Manifest.FirstPosition != events[0].Position.String() || res.Manifest.LastPosition != events[8].Position.String() {
		t.Fatalf("manifest positions %s..%s, want %s..%s", res.Manifest.FirstPosition, res.Manifest.LastPosition, events[0].Position, events[8].Position)
	}
	bound, err = partition.ParseBound(time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	res, err = m.Archive(ctx, bound, filepath.Join(t.TempDir(), "b.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Partitions) != 2 || res.Manifest.Partitions[1].End != 30 || !strings.Contains(res.Stopped, "can still receive events") {
		t.Fatalf("time bound after every event: archived %+v, stopped %q; want [10, 20) and [20, 30)", res.Manifest.Partitions, res.Stopped)
	}
	if _, err := partition.ParseBound("yesterday"); err == nil {
		t.Fatal("ParseBound accepted \"yesterday\"")
	}
}

// A partition holding events that a projection has not applied yet stays: archiving them would
// take them from under the projector for good.
func TestArchiveWaitsForProjections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 10)
	appendMany(t, s, m, 25)
	events := readAll(t, s, 25)
	// The orders projection has applied up to the 5th event (in [0, 10)), users everything.
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = $1 WHERE name = 'orders'`, events[4].Position.String()); err != nil {
		t.Fatal(err)
	}
	bound, _ := partition.ParseBound("20")
	if _, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "a.gz"), nil); !errors.Is(err, partition.ErrNothingToArchive) {
		t.Fatalf("archive with orders behind the first partition: %v, want ErrNothingToArchive", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM events`); n != 25 {
		t.Fatalf("%d events after a refused archive, want 25", n)
	}
	// Once it has applied the first partition's events, that partition goes, and the next
	// stays for the same reason.
	var last eventstore.Position
	for _, e := range events {
		if e.Position.Seq() < 10 && e.Position.Compare(last) > 0 {
			last = e.Position
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = $1 WHERE name = 'orders'`, last.String()); err != nil {
		t.Fatal(err)
	}
	res, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "b.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Partitions) != 1 || res.Manifest.Partitions[0].First != 0 || !strings.Contains(res.Stopped, "projection orders has not applied") {
		t.Fatalf("archived %+v, stopped %q; want [0, 10) only, and [10, 20) kept for orders", res.Manifest.Partitions, res.Stopped)
	}
}

// A projection that reads another category does not hold a partition back, however far
// behind it is; one that reads the partition's category does.
func TestArchiveWaitsOnlyForProjectionsOfTheCategory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, m, pool := tiny(t, 10)
	appendMany(t, s, m, 25)
	events := readAll(t, s, 25)
	// Every projection has applied nothing; orders reads "note", the others another category.
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = '', category = CASE name WHEN 'orders' THEN 'note' ELSE 'elsewhere' END`); err != nil {
		t.Fatal(err)
	}
	bound, _ := partition.ParseBound("20")
	if _, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "a.gz"), nil); !errors.Is(err, partition.ErrNothingToArchive) {
		t.Fatalf("archive with the note projection at nothing: %v, want ErrNothingToArchive", err)
	}
	// It has applied every event: the others, behind at nothing, do not count.
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET position = $1 WHERE name = 'orders'`, events[len(events)-1].Position.String()); err != nil {
		t.Fatal(err)
	}
	res, err := m.Archive(ctx, bound, filepath.Join(t.TempDir(), "b.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Partitions) != 2 || strings.Contains(res.Stopped, "projection") {
		t.Fatalf("archived %+v, stopped %q; want [0, 10) and [10, 20)", res.Manifest.Partitions, res.Stopped)
	}
	archived := res.Manifest.Partitions[0].Count + res.Manifest.Partitions[1].Count
	if n := count(t, pool, `SELECT count(*) FROM events`); n != int64(25-archived) {
		t.Fatalf("%d events after archiving %d, want %d", n, archived, 25-archived)
	}
}
