package eventstore

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// nullableEvent receives the event columns of an outer join, which are all NULL when a stream
// has no event in the requested range.
type nullableEvent struct {
	tx            *uint64
	seq           *int64
	id            *uuid.UUID
	streamID      *string
	version       *int64
	typ           *string
	schemaVersion *int
	data          json.RawMessage
	metadata      json.RawMessage
	recordedAt    *time.Time
	tags          []string
}

func (n *nullableEvent) targets() []any {
	return []any{&n.tx, &n.seq, &n.id, &n.streamID, &n.version, &n.typ, &n.schemaVersion, &n.data, &n.metadata, &n.recordedAt, &n.tags}
}

func (n *nullableEvent) event() (RecordedEvent, bool) {
	if n.seq == nil {
		return RecordedEvent{}, false
	}
	return RecordedEvent{
		ID: *n.id, StreamID: *n.streamID, Version: *n.version, Position: Position{tx: *n.tx, seq: *n.seq},
		Type: *n.typ, SchemaVersion: *n.schemaVersion, Data: n.data, Metadata: n.metadata, RecordedAt: *n.recordedAt, Tags: n.tags,
	}, true
}
