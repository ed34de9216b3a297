package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
)

var personOpts = eventstore.Options{Personal: []eventstore.PersonalFields{ //nolint:gochecknoglobals // test table
	{Category: "person", Types: map[string][]string{"Named": {"name", "email"}}},
}}

// sealAppend seals events for stream and appends them.
func sealAppend(t *testing.T, s *eventstore.Store, stream string, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	if err := s.Seal(t.Context(), stream, events); err != nil {
		t.Fatal(err)
	}
	return mustAppend(t, s, stream, eventstore.Any(), events...)
}

// rawData is what the events table holds for a stream, as text.
func rawData(t *testing.T, pool *pgxpool.Pool, stream string) string {
	t.Helper()
	var all string
	if err := pool.QueryRow(t.Context(), `SELECT coalesce(string_agg(data::text, ' ' ORDER BY version), '') FROM events WHERE stream_id = $1`, stream).Scan(&all); err != nil {
		t.Fatal(err)
	}
	return all
}

// readAllOf reads the events of stream through ReadAll, waiting (up to 15 s) until want of them
// are visible: ReadAll shows an event only once no older transaction anywhere in the shared
// cluster is still open.
func readAllOf(t *testing.T, s *eventstore.Store, stream string, want int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		all, err := s.ReadAll(t.Context(), eventstore.ReadAllOptions{Max: 1000, Category: eventstore.Category(stream)})
		if err != nil {
			t.Fatal(err)
		}
		var out []eventstore.RecordedEvent
		for _, e := range all {
			if e.StreamID == stream {
				out = append(out, e)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readStream(t *testing.T, s *eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	slice, err := s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{Max: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return slice.Events
}

func field(t *testing.T, e eventstore.RecordedEvent, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("%s: %v", e.Data, err)
	}
	return m[name]
}

// Personal fields are stored sealed, read in the clear by ReadStream and ReadAll, and read as
// Redacted by both once their subject is forgotten; the events, their positions and their other
// fields stay, and other subjects are untouched.
func TestPersonalFieldsAreSealedOpenedAndShredded(t *testing.T) {
	s, pool := newStore(t, personOpts)
	ada, bob := "person-"+uuid.NewString(), "person-"+uuid.NewString()
	sealAppend(t, s, ada, ev("Named", `{"name": "Ada Lovelace", "email": "ada@example.com", "age": 36}`), ev("Noted", `{"note": "not personal"}`))
	sealAppend(t, s, bob, ev("Named", `{"name": "Bob", "email": "bob@example.com"}`))

	raw := rawData(t, pool, ada)
	if strings.Contains(raw, "Ada") || strings.Contains(raw, "ada@") || !strings.Contains(raw, `"$personal"`) || !strings.Contains(raw, `"age": 36`) {
		t.Fatalf("stored: %s", raw)
	}
	before := readStream(t, s, ada)
	for _, events := range [][]eventstore.RecordedEvent{before, readAllOf(t, s, ada, 2)} {
		if len(events) != 2 || field(t, events[0], "name") != "Ada Lovelace" || field(t, events[0], "email") != "ada@example.com" ||
			field(t, events[0], "age") != float64(36) || events[0].UpcastErr != nil || len(events[0].Redacted) != 0 {
			t.Fatalf("before forgetting: %+v", events)
		}
	}

	if err := s.Forget(t.Context(), strings.TrimPrefix(ada, "person-"), ada); err != nil {
		t.Fatal(err)
	}
	for name, events := range map[string][]eventstore.RecordedEvent{"ReadStream": readStream(t, s, ada), "ReadAll": readAllOf(t, s, ada, 2)} {
		if len(events) != 2 || field(t, events[0], "name") != eventstore.Redacted || field(t, events[0], "email") != eventstore.Redacted ||
			field(t, events[0], "age") != float64(36) || strings.Join(events[0].Redacted, ",") == "" || events[0].UpcastErr != nil {
			t.Errorf("%s after forgetting: %+v", name, events)
		}
		for i, e := range events {
			if e.ID != before[i].ID || e.Position != before[i].Position || e.Version != before[i].Version {
				t.Errorf("%s: event %d moved: %+v, was %+v", name, i, e, before[i])
			}
		}
	}
	if b := readStream(t, s, bob); field(t, b[0], "email") != "bob@example.com" {
		t.Errorf("another subject: %s", b[0].Data)
	}
	if raw2 := rawData(t, pool, ada); raw2 != raw {
		t.Errorf("forgetting changed the stored events:\n%s\n%s", raw, raw2)
	}
	if err := s.Forget(t.Context(), strings.TrimPrefix(ada, "person-"), ada); err != nil {
		t.Errorf("forgetting twice: %v", err)
	}
	if err := s.Seal(t.Context(), ada, []eventstore.EventData{ev("Named", `{"name": "Ada"}`)}); !errors.Is(err, eventstore.ErrForgotten) {
		t.Errorf("sealing for a forgotten subject: %v", err)
	}
}

// Fields written in the clear (before sealing existed, or by a store without the marks) read as
// Redacted once their subject is forgotten, too.
func TestClearPersonalFieldsOfAForgottenSubjectReadRedacted(t *testing.T) {
	plainStore, pool := newStore(t, eventstore.Options{})
	stream := "person-" + uuid.NewString()
	mustAppend(t, plainStore, stream, eventstore.Any(), ev("Named", `{"name": "Old Timer", "email": "old@example.com"}`))
	s := eventstore.New(pool, personOpts)
	if e := readStream(t, s, stream); field(t, e[0], "name") != "Old Timer" {
		t.Fatalf("before: %s", e[0].Data)
	}
	if err := s.Forget(t.Context(), strings.TrimPrefix(stream, "person-")); err != nil {
		t.Fatal(err)
	}
	if e := readStream(t, s, stream); field(t, e[0], "name") != eventstore.Redacted || field(t, e[0], "email") != eventstore.Redacted {
		t.Errorf("after: %s", e[0].Data)
	}
}

// A sealed value copied into another event, or altered, does not open: the event reads with
// ErrTampered as its UpcastErr and its stored payload, never with someone else's data.
func TestTamperedPersonalFieldIsRefusedOnRead(t *testing.T) {
	s, _ := newStore(t, personOpts)
	stream := "person-" + uuid.NewString()
	res := sealAppend(t, s, stream, ev("Named", `{"name": "Ada", "email": "ada@example.com"}`))
	var sealed map[string]json.RawMessage
	if err := json.Unmarshal(res.Events[0].Data, &sealed); err != nil {
		t.Fatal(err)
	}
	moved, _ := json.Marshal(map[string]json.RawMessage{"name": sealed["name"]})
	swapped, _ := json.Marshal(map[string]json.RawMessage{"name": sealed["email"], "email": sealed["name"]})
	env := string(sealed["name"])
	altered := env[:len(env)-3] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, env[len(env)-3:len(env)-2]) + env[len(env)-2:]
	mustAppend(t, s, stream, eventstore.Any(),
		ev("Named", string(moved)), ev("Named", string(swapped)), ev("Named", `{"name": `+altered+`}`))
	events := readStream(t, s, stream)
	if len(events) != 4 || events[0].UpcastErr != nil {
		t.Fatalf("events: %+v", events)
	}
	for i, e := range events[1:] {
		// "Ada" as a JSON string: the envelopes' base64 may hold the letters Ada by chance.
		if !errors.Is(e.UpcastErr, eventstore.ErrTampered) || strings.Contains(string(e.Data), `"Ada"`) {
			t.Errorf("event %d: %s, %v", i+2, e.Data, e.UpcastErr)
		}
	}
}

// Two writers that seal the first data of one subject at once share one key.
func TestConcurrentFirstSealsMakeOneKey(t *testing.T) {
	s, pool := newStore(t, personOpts)
	stream := "person-" + uuid.NewString()
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events := []eventstore.EventData{ev("Named", `{"name": "Ada", "email": "ada@example.com"}`)}
			if err := s.Seal(context.Background(), stream, events); err != nil {
				errs <- err
				return
			}
			_, err := s.Append(context.Background(), stream, eventstore.Any(), events)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var keys int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM personal_keys WHERE subject = $1`, strings.TrimPrefix(stream, "person-")).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	events := readStream(t, s, stream)
	if keys != 1 || len(events) != writers {
		t.Fatalf("%d keys, %d events", keys, len(events))
	}
	for _, e := range events {
		if field(t, e, "email") != "ada@example.com" || e.UpcastErr != nil {
			t.Errorf("event %d: %s %v", e.Version, e.Data, e.UpcastErr)
		}
	}
}

// Forget deletes the subject's snapshots, and no snapshot of its state is saved afterwards.
func TestForgetDeletesSnapshotsAndRefusesNewOnes(t *testing.T) {
	s, pool := newStore(t, personOpts)
	id := uuid.NewString()
	stream := "person-" + id
	save := func(v int64) {
		t.Helper()
		if err := s.SaveSnapshot(t.Context(), eventstore.Snapshot{StreamID: stream, Version: v, Shape: 1, State: json.RawMessage(`{"name":"Ada"}`), Subject: id}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM snapshots WHERE stream_id = $1`, stream).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	save(1)
	save(2)
	if n := count(); n != 2 {
		t.Fatalf("%d snapshots before forgetting", n)
	}
	if err := s.Forget(t.Context(), id, stream); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d snapshots after forgetting", n)
	}
	save(3)
	if n := count(); n != 0 {
		t.Errorf("a snapshot was saved after forgetting")
	}
	if forgotten, err := s.Forgotten(t.Context(), id); err != nil || !forgotten {
		t.Errorf("Forgotten = %v, %v", forgotten, err)
	}
}

// ForgetAndAppend forgets and appends in one transaction: an append refused for its expected
// version forgets nothing, and one that succeeds is read with the subject's data redacted.
func TestForgetAndAppendIsOneTransaction(t *testing.T) {
	s, _ := newStore(t, personOpts)
	id := uuid.NewString()
	stream := "person-" + id
	sealAppend(t, s, stream, ev("Named", `{"name": "Ada"}`))
	forgotten := []eventstore.EventData{ev("Named", `{"name": "Ada"}`)}
	if err := s.Seal(t.Context(), stream, forgotten); err != nil {
		t.Fatal(err)
	}
	_, err := s.ForgetAndAppend(t.Context(), id, []string{stream}, []eventstore.StreamAppend{{StreamID: stream, Expected: eventstore.Exactly(5), Events: forgotten}})
	var wrong *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wrong) {
		t.Fatalf("append at a wrong version: %v", err)
	}
	if gone, err := s.Forgotten(t.Context(), id); err != nil || gone {
		t.Fatalf("a refused append forgot the subject: %v %v", gone, err)
	}
	res, err := s.ForgetAndAppend(t.Context(), id, []string{stream}, []eventstore.StreamAppend{{StreamID: stream, Expected: eventstore.Exactly(1), Events: forgotten}})
	if err != nil || len(res) != 1 || res[0].NextExpectedVersion != 2 {
		t.Fatalf("ForgetAndAppend: %+v %v", res, err)
	}
	for _, e := range readStream(t, s, stream) {
		if field(t, e, "name") != eventstore.Redacted {
			t.Errorf("event %d: %s", e.Version, e.Data)
		}
	}
}

// With a master key, the keys table holds subject keys only wrapped: a store with the same
// master key reads in the clear, a store without one or with another fails the read (never
// passing the data off as forgotten), and keys made before the master key stay usable.
func TestMasterKeyWrapsSubjectKeys(t *testing.T) {
	master := []byte(strings.Repeat("m", 32))
	withMaster := personOpts
	withMaster.MasterKey = master
	plainStore, pool := newStore(t, personOpts)
	s := eventstore.New(pool, withMaster)
	old, wrapped := "person-"+uuid.NewString(), "person-"+uuid.NewString()
	sealAppend(t, plainStore, old, ev("Named", `{"name": "Old Timer"}`))
	sealAppend(t, s, wrapped, ev("Named", `{"name": "Ada"}`))

	var isWrapped bool
	var key []byte
	if err := pool.QueryRow(t.Context(), `SELECT wrapped, key FROM personal_keys WHERE subject = $1`, strings.TrimPrefix(wrapped, "person-")).Scan(&isWrapped, &key); err != nil {
		t.Fatal(err)
	}
	if !isWrapped || len(key) != 60 {
		t.Fatalf("stored key: wrapped %v, %d bytes", isWrapped, len(key))
	}
	for stream, want := range map[string]string{old: "Old Timer", wrapped: "Ada"} {
		if e := readStream(t, s, stream); field(t, e[0], "name") != want {
			t.Errorf("%s with the master key: %s", stream, e[0].Data)
		}
	}
	other := personOpts
	other.MasterKey = []byte(strings.Repeat("x", 32))
	for name, st := range map[string]*eventstore.Store{"no master key": plainStore, "another master key": eventstore.New(pool, other)} {
		if _, err := st.ReadStream(t.Context(), wrapped, eventstore.ReadStreamOptions{Max: 10}); !errors.Is(err, eventstore.ErrMasterKey) {
			t.Errorf("%s: read %v, want ErrMasterKey", name, err)
		}
		if err := st.Seal(t.Context(), wrapped, []eventstore.EventData{ev("Named", `{"name": "Ada"}`)}); !errors.Is(err, eventstore.ErrMasterKey) {
			t.Errorf("%s: seal %v, want ErrMasterKey", name, err)
		}
	}
}
