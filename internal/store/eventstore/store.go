// Package eventstore keeps Strata's append-only log of events in PostgreSQL: appends with an
// optimistic concurrency check, reads of one stream by version, and reads of every stream in one
// global order that no reader can see with a gap, whatever order concurrent writers commit in.
//
// The store knows nothing of aggregates, projections, subscriptions or GraphQL.
package eventstore

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// Default limits; see Options.
const (
	DefaultMaxEventsPerAppend = 1000
	DefaultMaxEventSize       = 1 << 20 // bytes of data plus metadata
	DefaultMaxReadCount       = 10000
	MaxStreamIDLen            = 256 // bytes
	MaxEventTypeLen           = 256 // bytes
	MaxTags                   = 32  // tags of one event
	MaxTagLen                 = 256 // bytes
)

// Options sets the store's limits. Zero fields take the defaults.
type Options struct {
	MaxEventsPerAppend int // events in one Append call
	MaxEventSize       int // bytes of one event's data plus metadata
	MaxReadCount       int // events returned by one read
	// Upcasters bring old payloads to current shapes when events are read (upcast.go).
	Upcasters []Upcaster
	// Personal marks the personal fields of event types (personal.go): Seal encrypts them, and
	// reads redact them in the clear too once their subject is forgotten. Sealed fields are
	// opened on read whether or not their type is listed.
	Personal []PersonalFields
	// MasterKey, when set (32 bytes), wraps the subjects' keys as they are made, so that the
	// keys table alone opens nothing. Keys made before it was set stay usable; keys made with
	// it are refused by a store without it.
	MasterKey []byte
	// Appended, when set, is called after every append that wrote events, once its
	// transaction has committed, with the categories of the streams it wrote (Category). It
	// must not block: it exists to wake readers (projectors, the subscription feed), never to
	// extend the append.
	Appended func(categories []string)
	// Observer, when set, is told of every append and read, for metrics.
	Observer Observer
	// GroupCommit packs concurrent Appends into shared transactions (group.go); off, each
	// Append is its own transaction. GroupMaxEvents and GroupMaxBytes bound one transaction's
	// events and payload bytes (one append always fits, whatever its size); GroupWriters is how
	// many such transactions may be in flight at once.
	GroupCommit    bool
	GroupMaxEvents int
	GroupMaxBytes  int
	GroupWriters   int
	// TracerProvider makes the spans of appends and group commits (trace.go); nil: the global
	// one, a no-op unless the process set one.
	TracerProvider trace.TracerProvider
}

// Observer is told of the store's work as it finishes, on the caller's goroutine: it must not
// block.
type Observer interface {
	// Appended follows every Append and AppendMulti call: events is how many events it wrote
	// (none when it failed or repeated an earlier append), d how long it took, err its error.
	Appended(events int, d time.Duration, err error)
	// EventsRead follows every read of events (ReadStream, ReadAll) with how many it returned.
	EventsRead(events int)
}

func (o Options) withDefaults() Options {
	if o.MaxEventsPerAppend <= 0 {
		o.MaxEventsPerAppend = DefaultMaxEventsPerAppend
	}
	if o.MaxEventSize <= 0 {
		o.MaxEventSize = DefaultMaxEventSize
	}
	if o.MaxReadCount <= 0 {
		o.MaxReadCount = DefaultMaxReadCount
	}
	if o.GroupMaxEvents <= 0 {
		o.GroupMaxEvents = DefaultGroupMaxEvents
	}
	if o.GroupMaxBytes <= 0 {
		o.GroupMaxBytes = DefaultGroupMaxBytes
	}
	if o.GroupWriters <= 0 {
		o.GroupWriters = DefaultGroupWriters
	}
	return o
}

// Store is the event store on one PostgreSQL database. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	opts      Options
	upcasters map[upcastKey]Upcaster
	personal  personalIndex
	group     groupCommit
	tracer    trace.Tracer
}

// ConfigurePool sets what the store relies on in every connection of a pool it will be given:
// READ COMMITTED, whatever the server's default_transaction_isolation. An append re-checks a
// stream's version against the row a concurrent append committed; under REPEATABLE READ or
// SERIALIZABLE PostgreSQL would fail the statement instead.
func ConfigurePool(cfg *pgxpool.Config) {
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
}

// New returns a Store on pool, whose database must be migrated (package migrations) and whose
// configuration went through ConfigurePool.
func New(pool *pgxpool.Pool, opts Options) *Store {
	return &Store{pool: pool, opts: opts.withDefaults(), upcasters: indexUpcasters(opts.Upcasters), personal: indexPersonal(opts.Personal), tracer: newTracer(opts.TracerProvider)}
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; the zero UUID asks the store to make one. Supplying it makes a
	// retried Append idempotent.
	ID uuid.UUID
	// Type names what happened, e.g. "OrderPaid".
	Type string
	// SchemaVersion is the version of Data's shape; 0 means 1.
	SchemaVersion int
	// Data is the payload: a JSON object.
	Data json.RawMessage
	// Metadata is a JSON object, or nil for {}. By convention it carries "correlationId",
	// "causationId" and "actor" when the caller knows them.
	Metadata json.RawMessage
	// Tags name what the event is about, such as "product:42", for queries of the log and the
	// conditions of appends (docs/consistency.md): at most MaxTags, each non-empty and at most
	// MaxTagLen bytes of printable UTF-8, none twice.
	Tags []string
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID            uuid.UUID
	StreamID      string
	Version       int64 // 1-based within the stream
	Position      Position
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      json.RawMessage
	// RecordedAt is the start time of the transaction that appended the event (PostgreSQL's
	// now()): events of one append share it, and it is not necessarily in global order.
	RecordedAt time.Time
	// Tags are the event's tags, in the order the append gave them; nil when it has none.
	Tags []string
	// Stored is the payload as stored when reads upcast it (Data and SchemaVersion are then
	// the current shape); nil when the stored payload is current.
	Stored *Stored
	// UpcastErr says why an upcaster refused the stored payload, which Data then still holds;
	// or, matching ErrTampered, why a personal field did not open.
	UpcastErr error
	// Redacted names the personal fields that read as Redacted because their subject was
	// forgotten.
	Redacted []string
}

// Category returns the part of a stream id before its first '-': "order-123" is in "order".
// A stream id without '-' is its own category.
func Category(streamID string) string {
	for i := 0; i < len(streamID); i++ {
		if streamID[i] == '-' {
			return streamID[:i]
		}
	}
	return streamID
}
