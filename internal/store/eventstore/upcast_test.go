package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// Upcasters chain from the stored version to the newest; reads keep the stored payload
// alongside; a failing upcaster leaves the stored payload with the error.
func TestReadsUpcast(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 4)
	wrap := func(field string) func(json.RawMessage) (json.RawMessage, error) {
		return func(d json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{"` + field + `": ` + string(d) + `}`), nil
		}
	}
	s := eventstore.New(pool, eventstore.Options{Upcasters: []eventstore.Upcaster{
		{Type: "T", From: 1, Up: wrap("v2")},
		{Type: "T", From: 2, Up: wrap("v3")},
		{Type: "Bad", From: 1, Up: func(json.RawMessage) (json.RawMessage, error) { return nil, errors.New("nope") }},
	}})
	ctx := context.Background()
	res := mustAppend(t, s, "x-1", eventstore.Any(),
		eventstore.EventData{Type: "T", SchemaVersion: 1, Data: json.RawMessage(`{"a": 1}`)},
		eventstore.EventData{Type: "T", SchemaVersion: 3, Data: json.RawMessage(`{"b": 2}`)},
		eventstore.EventData{Type: "Bad", SchemaVersion: 1, Data: json.RawMessage(`{"c": 3}`)},
	)
	waitVisible(t, s, res.Position) // the global order shows it once older transactions in the cluster end
	slice, err := s.ReadStream(ctx, "x-1", eventstore.ReadStreamOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, eventstore.ReadAllOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	for name, events := range map[string][]eventstore.RecordedEvent{"stream": slice.Events, "all": all} {
		if len(events) != 3 {
			t.Fatalf("%s: %d events", name, len(events))
		}
		old, cur, bad := events[0], events[1], events[2]
		if old.SchemaVersion != 3 || string(old.Data) != `{"v3": {"v2": {"a": 1}}}` || old.Stored == nil || old.Stored.SchemaVersion != 1 || string(old.Stored.Data) != `{"a": 1}` {
			t.Errorf("%s: old event read as %+v (data %s)", name, old, old.Data)
		}
		if cur.SchemaVersion != 3 || cur.Stored != nil || cur.UpcastErr != nil {
			t.Errorf("%s: current event read as %+v", name, cur)
		}
		if bad.UpcastErr == nil || bad.SchemaVersion != 1 || string(bad.Data) != `{"c": 3}` {
			t.Errorf("%s: refused event read as %+v", name, bad)
		}
	}
}
