package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// ReadStreamOptions selects a slice of one stream.
type ReadStreamOptions struct {
	// From is the first version to return (inclusive). Forward, 0 means 1; backward, 0 means
	// the stream's last event.
	From int64
	// Max is the most events to return: 1 to the store's MaxReadCount.
	Max int
	// Backward reads towards version 1.
	Backward bool
}

// StreamSlice is the result of ReadStream.
type StreamSlice struct {
	StreamID string
	// Version is the stream's version when it was read: the version of its last event.
	Version int64
	// FirstVersion is the first version stream reads return: the stream's metadata
	// (truncateBefore, maxCount) hides the ones before it. 1 when nothing is hidden.
	FirstVersion int64
	Events       []RecordedEvent
}

// StreamInfo describes a stream.
type StreamInfo struct {
	ID      string
	Version int64
	// Deleted says the stream's last event (at Version) is its tombstone (DeleteStream).
	Deleted bool
	// Metadata are its lifecycle settings.
	Metadata StreamMetadata
}

// ReadStream reads events of one stream in version order, forward or backward. It returns
// ErrStreamNotFound when the stream has no events, and a *StreamDeletedError when it was
// deleted. Events the stream's metadata hides (lifecycle.go) are left out: a forward read from
// a version before the slice's FirstVersion starts at FirstVersion.
func (s *Store) ReadStream(ctx context.Context, streamID string, opts ReadStreamOptions) (StreamSlice, error) {
	if err := validateName("streamId", streamID, MaxStreamIDLen); err != nil {
		return StreamSlice{}, err
	}
	if err := s.checkMax(opts.Max); err != nil {
		return StreamSlice{}, err
	}
	if opts.From < 0 {
		return StreamSlice{}, &ValidationError{Field: "fromVersion", Reason: fmt.Sprintf("%d is negative", opts.From)}
	}
	query, from := pgsql.EventstoreReadStreamForward, opts.From
	if opts.Backward {
		query = pgsql.EventstoreReadStreamBackward
		if from == 0 {
			from = math.MaxInt64
		}
	}
	rows, err := s.pool.Query(ctx, query, streamID, from, opts.Max)
	if err != nil {
		return StreamSlice{}, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	defer rows.Close()
	slice := StreamSlice{StreamID: streamID, Version: -1}
	var deleted *int64
	for rows.Next() {
		var (
			version int64
			e       nullableEvent
		)
		if err := rows.Scan(append([]any{&version, &deleted, &slice.FirstVersion}, e.targets()...)...); err != nil {
			return StreamSlice{}, fmt.Errorf("read stream %s: %w", streamID, err)
		}
		slice.Version = version
		if ev, ok := e.event(); ok {
			slice.Events = append(slice.Events, ev)
		}
	}
	if err := rows.Err(); err != nil {
		return StreamSlice{}, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	if slice.Version < 0 {
		return StreamSlice{}, fmt.Errorf("read stream %s: %w", streamID, ErrStreamNotFound)
	}
	if deleted != nil {
		return StreamSlice{}, &StreamDeletedError{StreamID: streamID, Version: *deleted}
	}
	if err := s.transform(ctx, s.pool, slice.Events); err != nil {
		return StreamSlice{}, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	s.read(len(slice.Events))
	return slice, nil
}

// Stream returns a stream's id, version, whether it is deleted and its lifecycle settings, or
// ErrStreamNotFound.
func (s *Store) Stream(ctx context.Context, streamID string) (StreamInfo, error) {
	if err := validateName("streamId", streamID, MaxStreamIDLen); err != nil {
		return StreamInfo{}, err
	}
	info := StreamInfo{ID: streamID}
	var md storedMetadata
	err := s.pool.QueryRow(ctx, pgsql.EventstoreStream, streamID).Scan(&info.Version, &info.Deleted, &md)
	if errors.Is(err, pgx.ErrNoRows) {
		return StreamInfo{}, fmt.Errorf("stream %s: %w", streamID, ErrStreamNotFound)
	}
	if err != nil {
		return StreamInfo{}, fmt.Errorf("stream %s: %w", streamID, err)
	}
	info.Metadata = md.metadata()
	return info, nil
}

// ReadAllOptions selects events in the global order.
type ReadAllOptions struct {
	// After is the position to read after (exclusive); the zero Position reads from the start.
	After Position
	// Max is the most events to return: 1 to the store's MaxReadCount.
	Max int
	// Category, when set, keeps only events of streams in that category.
	Category string
	// Types, when set, keeps only events of these types.
	Types []string
}

// ReadAll reads events of every stream in the global order, after opts.After. Paging with the
// position of the last event returned walks every event exactly once, while writers are busy
// too. Reads run in their own snapshot and never block writers.
func (s *Store) ReadAll(ctx context.Context, opts ReadAllOptions) ([]RecordedEvent, error) {
	return s.ReadAllIn(ctx, s.pool, opts)
}

// ReadAllIn is ReadAll through q, a transaction of the caller's (and the keys of personal
// fields through it too): a reader that writes what it read in the same transaction holds one
// connection, never waiting for a second.
func (s *Store) ReadAllIn(ctx context.Context, q RowsQuerier, opts ReadAllOptions) ([]RecordedEvent, error) {
	if err := s.checkMax(opts.Max); err != nil {
		return nil, err
	}
	if opts.Category != "" {
		if err := validateName("category", opts.Category, MaxStreamIDLen); err != nil {
			return nil, err
		}
	}
	for i, t := range opts.Types {
		if err := validateName(fmt.Sprintf("types[%d]", i), t, MaxEventTypeLen); err != nil {
			return nil, err
		}
	}
	args := []any{opts.After.tx, opts.After.seq, opts.Max}
	var query string
	switch {
	case opts.Category != "" && len(opts.Types) > 0:
		query, args = pgsql.EventstoreReadAllCategoryTypes, append(args, opts.Category, opts.Types)
	case opts.Category != "":
		query, args = pgsql.EventstoreReadAllCategory, append(args, opts.Category)
	case len(opts.Types) > 0:
		query, args = pgsql.EventstoreReadAllTypes, append(args, opts.Types)
	default:
		query = pgsql.EventstoreReadAll
	}
	return s.readEventsOn(ctx, q, "read all", query, args...)
}

// readEvents runs a read of the global order (query returns pgsql's event columns), brings
// the events to their current shapes (transform) and counts them.
func (s *Store) readEvents(ctx context.Context, what, query string, args ...any) ([]RecordedEvent, error) {
	return s.readEventsOn(ctx, s.pool, what, query, args...)
}

// RowsQuerier runs queries that return rows: a pool, a connection or a transaction.
type RowsQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readEventsOn is readEvents through q, the keys of personal fields included.
func (s *Store) readEventsOn(ctx context.Context, q RowsQuerier, what, query string, args ...any) ([]RecordedEvent, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := s.transform(ctx, q, events); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.read(len(events))
	return events, nil
}

// scanEvent scans a row of pgsql's event columns (EventstoreReadAll's).
func scanEvent(r pgx.CollectableRow) (RecordedEvent, error) {
	var e RecordedEvent
	err := r.Scan(&e.Position.tx, &e.Position.seq, &e.ID, &e.StreamID, &e.Version, &e.Type, &e.SchemaVersion, &e.Data, &e.Metadata, &e.RecordedAt, &e.Tags)
	return e, err
}

func (s *Store) read(n int) {
	if s.opts.Observer != nil {
		s.opts.Observer.EventsRead(n)
	}
}

func (s *Store) checkMax(n int) error {
	if n < 1 || n > s.opts.MaxReadCount {
		return &ValidationError{Field: "maxCount", Reason: fmt.Sprintf("%d is outside 1..%d", n, s.opts.MaxReadCount)}
	}
	return nil
}

// CountAfter counts the events ReadAll would return after a position, in category (all when
// empty), counting at most limit of them.
func (s *Store) CountAfter(ctx context.Context, after Position, category string, limit int) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, pgsql.EventstoreCountAfter, after.tx, after.seq, category, limit).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// ErrAsOfUnsettled is returned by AsOf when a transaction that began before the time asked for
// is still open after the wait: the log as of that time may still grow.
var ErrAsOfUnsettled = errors.New("the log as of that time is not settled yet")

// AsOf returns the end of the prefix of the global order that is the log "as of" t: every event
// before the first one (in the global order) whose transaction began after t. The prefix is
// exclusive of the returned position: an event belongs to the log as of t when its position is
// before it. Events carry their transaction's start time (RecordedAt), and transactions commit
// out of start order, so an event that began before t but follows, in the global order, one that
// began after t is not in the prefix: the log as of t is always a prefix, and every reader of
// it, whatever its filter, sees the same one. docs/time-travel.md has the reasoning.
//
// When no visible event began after t, the prefix reaches past what readers can see yet, and is
// only final once every transaction that began by t has ended: AsOf waits for that, up to
// settle, and returns ErrAsOfUnsettled if it does not happen.
func (s *Store) AsOf(ctx context.Context, t time.Time, settle time.Duration) (Position, error) {
	deadline := time.Now().Add(settle)
	for {
		var (
			tx   *uint64
			seq  *int64
			xmin uint64
		)
		if err := s.pool.QueryRow(ctx, pgsql.EventstoreAsOf, t).Scan(&tx, &seq, &xmin); err != nil {
			return Position{}, fmt.Errorf("as of %s: %w", t.Format(time.RFC3339Nano), err)
		}
		if tx != nil {
			return Position{tx: *tx, seq: *seq}, nil
		}
		var open bool
		if err := s.pool.QueryRow(ctx, pgsql.EventstoreAsOfUnsettled, t).Scan(&open); err != nil {
			return Position{}, fmt.Errorf("as of %s: %w", t.Format(time.RFC3339Nano), err)
		}
		if !open {
			// Everything visible is as of t, and nothing begun by t is still to come. A
			// transaction that ended between the two queries is visible to the next: look again
			// once, with the settled answer standing if nothing changed.
			var tx2 *uint64
			var seq2 *int64
			var xmin2 uint64
			if err := s.pool.QueryRow(ctx, pgsql.EventstoreAsOf, t).Scan(&tx2, &seq2, &xmin2); err != nil {
				return Position{}, fmt.Errorf("as of %s: %w", t.Format(time.RFC3339Nano), err)
			}
			if tx2 != nil {
				return Position{tx: *tx2, seq: *seq2}, nil
			}
			// Every visible event is as of t. An event that began by t but is not visible yet
			// (at or above the horizon) waits on a transaction with an older id, and that one
			// began after t, or belongs to another database, if it is not among the open ones
			// above: should one of this database append, its events would come first in the
			// global order and end the prefix before that event. Until it ends, whether the
			// event is in the log as of t is not known.
			var pending bool
			if err := s.pool.QueryRow(ctx, pgsql.EventstoreAsOfPending, t, xmin2).Scan(&pending); err != nil {
				return Position{}, fmt.Errorf("as of %s: %w", t.Format(time.RFC3339Nano), err)
			}
			if !pending {
				return Position{tx: xmin2}, nil // every visible position is before this one
			}
		}
		if time.Now().After(deadline) {
			return Position{}, fmt.Errorf("as of %s: %w: a transaction that began by then, or one that could still come before its events, is still open", t.Format(time.RFC3339Nano), ErrAsOfUnsettled)
		}
		select {
		case <-ctx.Done():
			return Position{}, context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
