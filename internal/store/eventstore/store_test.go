package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newStore(t *testing.T, opts eventstore.Options) (*eventstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 40)
	return eventstore.New(pool, opts), pool
}

func ev(typ, data string) eventstore.EventData {
	return eventstore.EventData{Type: typ, Data: json.RawMessage(data)}
}

func evID(id uuid.UUID, typ, data string) eventstore.EventData {
	return eventstore.EventData{ID: id, Type: typ, Data: json.RawMessage(data)}
}

// counts returns how many events and streams the database holds.
func counts(t *testing.T, pool *pgxpool.Pool) (events, streams int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM streams)`).Scan(&events, &streams)
	if err != nil {
		t.Fatal(err)
	}
	return events, streams
}

func mustAppend(t *testing.T, s *eventstore.Store, stream string, exp eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, events)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func TestAppendThenReadStream(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, eventstore.Options{})
	ctx := context.Background()

	res := mustAppend(t, s, "order-1", eventstore.NoStream(),
		eventstore.EventData{Type: "OrderCreated", Data: json.RawMessage(`{"items": [1, 2]}`), Metadata: json.RawMessage(`{"actor":"ann","correlationId":"c1"}`)},
		ev("OrderPaid", `{"amount":"9.99"}`),
		eventstore.EventData{Type: "OrderShipped", SchemaVersion: 2, Data: json.RawMessage(`{}`)},
	)
	if res.NextExpectedVersion != 3 || len(res.Events) != 3 || res.Repeated {
		t.Fatalf("append result = %+v", res)
	}
	for i, e := range res.Events {
		if e.Version != int64(i+1) || e.StreamID != "order-1" || e.ID == uuid.Nil || e.RecordedAt.IsZero() {
			t.Errorf("appended event %d = %+v", i, e)
		}
		if i > 0 && e.Position.Compare(res.Events[i-1].Position) <= 0 {
			t.Errorf("positions not increasing: %v then %v", res.Events[i-1].Position, e.Position)
		}
	}
	if res.Position != res.Events[2].Position {
		t.Errorf("result position %v, last event's %v", res.Position, res.Events[2].Position)
	}

	slice, err := s.ReadStream(ctx, "order-1", eventstore.ReadStreamOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if slice.Version != 3 || len(slice.Events) != 3 {
		t.Fatalf("read = version %d, %d events", slice.Version, len(slice.Events))
	}
	got := slice.Events[0]
	want := res.Events[0]
	if got.ID != want.ID || got.Position != want.Position || got.Type != "OrderCreated" || got.SchemaVersion != 1 ||
		!got.RecordedAt.Equal(want.RecordedAt) || string(got.Data) != `{"items": [1, 2]}` ||
		string(got.Metadata) != `{"actor": "ann", "correlationId": "c1"}` {
		t.Errorf("read back %+v, appended %+v", got, want)
	}
	if slice.Events[2].SchemaVersion != 2 || string(slice.Events[1].Metadata) != `{}` {
		t.Errorf("schema version / default metadata: %+v", slice.Events[1:])
	}

	tests := []struct {
		name string
		opts eventstore.ReadStreamOptions
		want []int64
	}{
		{"forward from 2", eventstore.ReadStreamOptions{From: 2, Max: 10}, []int64{2, 3}},
		{"forward max 2", eventstore.ReadStreamOptions{Max: 2}, []int64{1, 2}},
		{"forward past end", eventstore.ReadStreamOptions{From: 4, Max: 10}, nil},
		{"backward from end", eventstore.ReadStreamOptions{Backward: true, Max: 10}, []int64{3, 2, 1}},
		{"backward from 2", eventstore.ReadStreamOptions{From: 2, Backward: true, Max: 10}, []int64{2, 1}},
		{"backward max 1", eventstore.ReadStreamOptions{Backward: true, Max: 1}, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slice, err := s.ReadStream(ctx, "order-1", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var versions []int64
			for _, e := range slice.Events {
				versions = append(versions, e.Version)
			}
			if fmt.Sprint(versions) != fmt.Sprint(tt.want) || slice.Version != 3 {
				t.Errorf("versions %v (stream at %d), want %v", versions, slice.Version, tt.want)
			}
		})
	}

	if _, err := s.ReadStream(ctx, "order-404", eventstore.ReadStreamOptions{Max: 10}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("reading a missing stream: %v, want ErrStreamNotFound", err)
	}
	if info, err := s.Stream(ctx, "order-1"); err != nil || info.Version != 3 {
		t.Errorf("Stream = %+v, %v", info, err)
	}
	if _, err := s.Stream(ctx, "order-404"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("Stream of a missing stream: %v", err)
	}
}

func TestExpectedVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		existing   int // events already in the stream
		expected   eventstore.ExpectedVersion
		wantActual int64 // -1: the append succeeds
	}{
		{"any on a new stream", 0, eventstore.Any(), -1},
		{"any on an existing stream", 2, eventstore.Any(), -1},
		{"no stream on a new stream", 0, eventstore.NoStream(), -1},
		{"no stream on an existing stream", 2, eventstore.NoStream(), 2},
		{"exact match", 2, eventstore.Exactly(2), -1},
		{"exact behind", 3, eventstore.Exactly(2), 3},
		{"exact ahead", 2, eventstore.Exactly(5), 2},
		{"exact on a new stream", 0, eventstore.Exactly(1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t, eventstore.Options{})
			for i := 0; i < tt.existing; i++ {
				mustAppend(t, s, "user-7", eventstore.Any(), ev("Seeded", `{}`))
			}
			res, err := s.Append(context.Background(), "user-7", tt.expected, []eventstore.EventData{ev("Tried", `{}`), ev("Tried", `{}`)})
			events, _ := counts(t, pool)
			if tt.wantActual < 0 {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if res.NextExpectedVersion != int64(tt.existing+2) || events != tt.existing+2 {
					t.Errorf("next expected %d with %d events stored, want %d", res.NextExpectedVersion, events, tt.existing+2)
				}
				return
			}
			var wrong *eventstore.WrongExpectedVersionError
			if !errors.As(err, &wrong) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Fatalf("append: %v, want a WrongExpectedVersionError", err)
			}
			want, _ := tt.expected.Value()
			if wrong.Actual != tt.wantActual || wrong.Expected != want || wrong.StreamID != "user-7" {
				t.Errorf("error = %+v, want actual %d", wrong, tt.wantActual)
			}
			if events != tt.existing {
				t.Errorf("%d events stored after a conflict, want %d", events, tt.existing)
			}
		})
	}
}

func TestConcurrentAppendsWithSameExpectedVersionOneWins(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	const contenders = 16
	for _, start := range []int64{0, 3} { // creating the stream, then extending it
		if start > 0 {
			mustAppend(t, s, "order-race", eventstore.Exactly(1), ev("A", `{}`), ev("B", `{}`))
		}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			wins      int
			conflicts int
			others    []error
		)
		gate := make(chan struct{})
		for i := 0; i < contenders; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				_, err := s.Append(ctx, "order-race", eventstore.Exactly(start), []eventstore.EventData{ev("Raced", `{}`)})
				mu.Lock()
				defer mu.Unlock()
				var wrong *eventstore.WrongExpectedVersionError
				switch {
				case err == nil:
					wins++
				case errors.As(err, &wrong) && wrong.Actual == start+1:
					conflicts++
				default:
					others = append(others, err)
				}
			}()
		}
		close(gate)
		wg.Wait()
		if wins != 1 || conflicts != contenders-1 || len(others) > 0 {
			t.Fatalf("from version %d: %d wins, %d conflicts, other errors %v", start, wins, conflicts, others)
		}
		if start == 0 {
			if events, _ := counts(t, pool); events != 1 {
				t.Fatalf("%d events after the creation race, want 1", events)
			}
		}
	}
	slice, err := s.ReadStream(ctx, "order-race", eventstore.ReadStreamOptions{Max: 100})
	if err != nil {
		t.Fatal(err)
	}
	if slice.Version != 4 || len(slice.Events) != 4 {
		t.Errorf("stream at %d with %d events, want 4 and 4", slice.Version, len(slice.Events))
	}
}

func TestAppendIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id1, id2 := uuid.New(), uuid.New()
	call := []eventstore.EventData{evID(id1, "UserRegistered", `{"email":"a@example.com"}`), evID(id2, "EmailChanged", `{"email":"b@example.com"}`)}

	t.Run("retry with the same expected version", func(t *testing.T) {
		t.Parallel()
		s, pool := newStore(t, eventstore.Options{})
		first, err := s.Append(ctx, "user-1", eventstore.NoStream(), call)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, "user-1", eventstore.Any(), ev("Later", `{}`))
		again, err := s.Append(ctx, "user-1", eventstore.NoStream(), call)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if !again.Repeated || first.Repeated || again.NextExpectedVersion != 2 || again.Position != first.Position ||
			again.Events[0].Position != first.Events[0].Position || !again.Events[1].RecordedAt.Equal(first.Events[1].RecordedAt) {
			t.Errorf("retry result %+v, first %+v", again, first)
		}
		if events, _ := counts(t, pool); events != 3 {
			t.Errorf("%d events stored, want 3", events)
		}
	})

	t.Run("retry with any version and reordered json keys", func(t *testing.T) {
		t.Parallel()
		s, pool := newStore(t, eventstore.Options{})
		withMeta := []eventstore.EventData{{ID: id1, Type: "T", Data: json.RawMessage(`{"a":1,"b":[true]}`), Metadata: json.RawMessage(`{"actor":"x"}`)}}
		mustAppend(t, s, "user-2", eventstore.Any(), withMeta...)
		reordered := []eventstore.EventData{{ID: id1, Type: "T", Data: json.RawMessage(`{ "b": [true], "a": 1 }`), Metadata: json.RawMessage(`{"actor": "x"}`)}}
		res, err := s.Append(ctx, "user-2", eventstore.Any(), reordered)
		if err != nil || !res.Repeated {
			t.Fatalf("retry: %+v, %v", res, err)
		}
		if events, _ := counts(t, pool); events != 1 {
			t.Errorf("%d events stored, want 1", events)
		}
	})

	t.Run("concurrent retries", func(t *testing.T) {
		t.Parallel()
		s, pool := newStore(t, eventstore.Options{})
		const n = 8
		var wg sync.WaitGroup
		results := make([]eventstore.AppendResult, n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = s.Append(ctx, "user-3", eventstore.NoStream(), call)
			}()
		}
		wg.Wait()
		fresh := 0
		for i := range results {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if !results[i].Repeated {
				fresh++
			}
			if results[i].Position != results[0].Position {
				t.Errorf("caller %d got position %v, caller 0 %v", i, results[i].Position, results[0].Position)
			}
		}
		if events, _ := counts(t, pool); fresh != 1 || events != 2 {
			t.Errorf("%d callers wrote, %d events stored; want 1 and 2", fresh, events)
		}
	})

	refusals := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
	}{
		{"other content", "user-4", eventstore.NoStream(), []eventstore.EventData{evID(id1, "UserRegistered", `{"email":"z@example.com"}`), call[1]}},
		{"other type", "user-4", eventstore.NoStream(), []eventstore.EventData{evID(id1, "Other", `{"email":"a@example.com"}`), call[1]}},
		{"other stream", "user-5", eventstore.NoStream(), call},
		{"other expected version", "user-4", eventstore.Exactly(2), call},
		{"only some of the ids", "user-4", eventstore.Any(), []eventstore.EventData{call[0], evID(uuid.New(), "New", `{}`)}},
		{"a stored id among new ones", "user-4", eventstore.Any(), []eventstore.EventData{evID(uuid.New(), "New", `{}`), call[1]}},
		{"the ids in another order", "user-4", eventstore.NoStream(), []eventstore.EventData{call[1], call[0]}},
	}
	for _, tt := range refusals {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t, eventstore.Options{})
			mustAppend(t, s, "user-4", eventstore.NoStream(), call...)
			_, err := s.Append(ctx, tt.stream, tt.expected, tt.events)
			var dup *eventstore.DuplicateEventIDError
			if !errors.As(err, &dup) || !errors.Is(err, eventstore.ErrDuplicateEventID) {
				t.Fatalf("append: %v, want a DuplicateEventIDError", err)
			}
			if events, streams := counts(t, pool); events != 2 || streams != 1 {
				t.Errorf("%d events in %d streams after the refusal, want 2 in 1", events, streams)
			}
		})
	}
}

func TestAppendRefusesBadInput(t *testing.T) {
	t.Parallel()
	good := func() []eventstore.EventData { return []eventstore.EventData{ev("Ok", `{}`)} }
	with := func(mod func(*eventstore.EventData)) []eventstore.EventData {
		events := []eventstore.EventData{ev("Ok", `{"first":true}`), ev("Ok", `{}`), ev("Ok", `{"last":true}`)}
		mod(&events[1]) // the bad event sits between good ones: none may be written
		return events
	}
	many := func(n int) []eventstore.EventData {
		events := make([]eventstore.EventData, n)
		for i := range events {
			events[i] = ev("Ok", `{}`)
		}
		return events
	}
	sameID := uuid.New()
	tests := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
		field    string
	}{
		{"empty stream id", "", eventstore.Any(), good(), "streamId"},
		{"stream id over 256 bytes", "order-" + strings.Repeat("x", 251), eventstore.Any(), good(), "streamId"},
		{"stream id with a newline", "order-1\n", eventstore.Any(), good(), "streamId"},
		{"stream id with NUL", "order-\x001", eventstore.Any(), good(), "streamId"},
		{"stream id with DEL", "order-\x7f", eventstore.Any(), good(), "streamId"},
		{"stream id with a C1 control", "order-\u0085", eventstore.Any(), good(), "streamId"},
		{"stream id not UTF-8", "order-\xff", eventstore.Any(), good(), "streamId"},
		{"negative expected version", "order-1", eventstore.Exactly(-1), good(), "expectedVersion"},
		{"no events", "order-1", eventstore.Any(), nil, "events"},
		{"more events than the limit", "order-1", eventstore.Any(), many(eventstore.DefaultMaxEventsPerAppend + 1), "events"},
		{"empty type", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Type = "" }), "events[1].type"},
		{"type over 256 bytes", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Type = strings.Repeat("T", 257) }), "events[1].type"},
		{"type with a tab", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Type = "Order\tPaid" }), "events[1].type"},
		{"missing data", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = nil }), "events[1].data"},
		{"data an array", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`[1]`) }), "events[1].data"},
		{"data a string", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`"x"`) }), "events[1].data"},
		{"data null", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`null`) }), "events[1].data"},
		{"data a number", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`12`) }), "events[1].data"},
		{"data not JSON", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{"a":`) }), "events[1].data"},
		{"data two objects", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{}{}`) }), "events[1].data"},
		{"metadata an array", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Metadata = json.RawMessage(`[]`) }), "events[1].metadata"},
		{"metadata empty", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Metadata = json.RawMessage(``) }), "events[1].metadata"},
		{"event over 1 MiB", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) {
			e.Data = json.RawMessage(`{"big":"` + strings.Repeat("x", eventstore.DefaultMaxEventSize) + `"}`)
		}), "events[1].data"},
		{"metadata pushing the event over 1 MiB", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) {
			e.Data = json.RawMessage(`{"half":"` + strings.Repeat("x", eventstore.DefaultMaxEventSize/2) + `"}`)
			e.Metadata = json.RawMessage(`{"half":"` + strings.Repeat("x", eventstore.DefaultMaxEventSize/2) + `"}`)
		}), "events[1].data"},
		{"negative schema version", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.SchemaVersion = -1 }), "events[1].schemaVersion"},
		{"the same id twice", "order-1", eventstore.Any(), []eventstore.EventData{evID(sameID, "A", `{}`), evID(sameID, "B", `{}`)}, "events[1].id"},
		// PostgreSQL's jsonb cannot hold U+0000: the database refuses it, and still nothing is written.
		{"data with an escaped NUL", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{"s":"a\u0000b"}`) }), "events"},
		{"number out of jsonb's range", "order-1", eventstore.Any(), with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{"n":1e999999}`) }), "events"},
	}
	s, pool := newStore(t, eventstore.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(context.Background(), tt.stream, tt.expected, tt.events)
			var invalid *eventstore.ValidationError
			if !errors.As(err, &invalid) || !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Fatalf("append: %v, want a ValidationError", err)
			}
			if invalid.Field != tt.field || invalid.Reason == "" {
				t.Errorf("error field %q (%v), want %q", invalid.Field, err, tt.field)
			}
			if events, streams := counts(t, pool); events != 0 || streams != 0 {
				t.Errorf("%d events in %d streams written", events, streams)
			}
		})
	}

	t.Run("limits are configurable", func(t *testing.T) {
		small := eventstore.New(pool, eventstore.Options{MaxEventsPerAppend: 2, MaxEventSize: 10})
		if _, err := small.Append(context.Background(), "order-1", eventstore.Any(), many(3)); !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("3 events with a limit of 2: %v", err)
		}
		if _, err := small.Append(context.Background(), "order-1", eventstore.Any(), []eventstore.EventData{ev("A", `{"abcdefghij":1}`)}); !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("a 16-byte event with a limit of 10: %v", err)
		}
		if _, err := small.Append(context.Background(), "order-1", eventstore.Any(), many(2)); err != nil {
			t.Errorf("2 events with a limit of 2: %v", err)
		}
	})
}

func TestAppendIsAtomic(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	taken := uuid.New()
	mustAppend(t, s, "order-1", eventstore.Any(), evID(taken, "A", `{}`))
	// The third event's id is taken by another stream: the database refuses the insert after
	// the first two rows are written, and the whole append must roll back.
	_, err := s.Append(context.Background(), "order-2", eventstore.Any(), []eventstore.EventData{
		ev("B", `{}`), ev("C", `{}`), evID(taken, "A", `{}`),
	})
	if !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("append: %v, want ErrDuplicateEventID", err)
	}
	if events, streams := counts(t, pool); events != 1 || streams != 1 {
		t.Errorf("%d events in %d streams, want only the first append's", events, streams)
	}
}

func asValidation(err error, target **eventstore.ValidationError) bool { return errors.As(err, target) }

func dbtestPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return dbtest.PoolFor(tb, dbtest.URL(tb), 16)
}

// TestAppendsUnderAStricterServerDefault: a server whose default isolation is SERIALIZABLE
// would fail an append that waited for another on the same stream; ConfigurePool keeps the
// store's connections at READ COMMITTED.
func TestAppendsUnderAStricterServerDefault(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	admin := dbtest.PoolFor(t, url, 1)
	var db string
	if err := admin.QueryRow(context.Background(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(context.Background(), `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET default_transaction_isolation = 'serializable'`); err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(dbtest.PoolFor(t, url, 8), eventstore.Options{}) // PoolFor applies ConfigurePool
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := s.Append(context.Background(), "order-contended", eventstore.Any(), []eventstore.EventData{ev("Tick", `{}`)})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append under a SERIALIZABLE server default: %v", err)
	}
	if info, err := s.Stream(context.Background(), "order-contended"); err != nil || info.Version != 160 {
		t.Errorf("stream = %+v, %v; want version 160", info, err)
	}
}
