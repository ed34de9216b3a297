package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
)

// Upcaster turns the payload of events of Type at schema version From into the shape of version
// From+1. Upcasters are pure functions registered with the store (Options.Upcasters); reads
// apply them in turn until no upcaster matches, so readers only ever see current shapes. The
// stored bytes never change.
type Upcaster struct {
	Type string
	From int
	Up   func(data json.RawMessage) (json.RawMessage, error)
}

// Stored is an event's payload as stored, kept on a RecordedEvent whose payload was upcast.
type Stored struct {
	SchemaVersion int
	Data          json.RawMessage
}

type upcastKey struct {
	typ  string
	from int
}

func indexUpcasters(ups []Upcaster) map[upcastKey]Upcaster {
	if len(ups) == 0 {
		return nil
	}
	m := make(map[upcastKey]Upcaster, len(ups))
	for _, u := range ups {
		m[upcastKey{u.Type, u.From}] = u
	}
	return m
}

// transform is the one read transform every read of events goes through, a page at a time,
// once the page's rows are closed: personal fields are opened (or redacted) as stored, then
// payloads are upcast to current shapes.
func (s *Store) transform(ctx context.Context, q RowsQuerier, events []RecordedEvent) error {
	if err := s.unseal(ctx, q, events); err != nil {
		return err
	}
	for i := range events {
		if events[i].UpcastErr == nil {
			s.upcast(&events[i])
		}
	}
	return nil
}

// upcast brings e's payload to its type's current shape. An upcaster that fails leaves the event
// as stored, with UpcastErr saying why: readers that know the type then refuse or skip it, and
// the event-store operations still show it.
func (s *Store) upcast(e *RecordedEvent) {
	if s.upcasters == nil {
		return
	}
	data, version := e.Data, e.SchemaVersion
	for range 100 { // a bound on chains, against a registry that loops
		u, ok := s.upcasters[upcastKey{e.Type, version}]
		if !ok {
			break
		}
		next, err := u.Up(data)
		if err != nil {
			e.UpcastErr = fmt.Errorf("upcast %s from version %d: %w", e.Type, version, err)
			return
		}
		data, version = next, version+1
	}
	if version != e.SchemaVersion {
		e.Stored = &Stored{SchemaVersion: e.SchemaVersion, Data: e.Data}
		e.Data, e.SchemaVersion = data, version
	}
}
