package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Stream lifecycle: soft deletion with a tombstone event, and stream metadata that hides a
// stream's older events (truncateBefore, maxAge, maxCount) from stream reads until the
// Scavenger deletes them. The global order is never rewritten: the tombstone is an ordinary
// event with the next position, and the scavenger deletes rows, never renumbers them.
// docs/design.md ("Stream lifecycle") has the reasoning.

// StreamDeletedType is the type of a stream's tombstone, the event DeleteStream appends. Event
// types starting with '$' are reserved for the store: appends of them are refused.
const StreamDeletedType = "$StreamDeleted"

// ErrStreamDeleted is matched (errors.Is) by every *StreamDeletedError.
var ErrStreamDeleted = errors.New("stream deleted")

// StreamDeletedError says a stream was deleted: reads of it and appends to it are refused until
// it is recreated by an append with expected version NoStream.
type StreamDeletedError struct {
	StreamID string
	Version  int64 // the tombstone's version: the stream's version since its deletion
}

func (e *StreamDeletedError) Error() string {
	return fmt.Sprintf("stream %s was deleted at version %d; append with expected version 0 (no stream) to recreate it", e.StreamID, e.Version)
}

// Is makes errors.Is(err, ErrStreamDeleted) hold.
func (e *StreamDeletedError) Is(target error) bool { return target == ErrStreamDeleted }

// ErrTruncated is matched (errors.Is) by every *TruncatedError.
var ErrTruncated = errors.New("stream truncated")

// TruncatedError says a read asked for events a stream hides: versions before First (set by
// truncateBefore or maxCount), which may already be deleted.
type TruncatedError struct {
	StreamID string
	Version  int64 // the version asked for; 0 when it was a time
	First    int64 // the stream's first version that reads return
}

func (e *TruncatedError) Error() string {
	if e.Version > 0 {
		return fmt.Sprintf("stream %s: version %d is truncated; its history starts at version %d", e.StreamID, e.Version, e.First)
	}
	return fmt.Sprintf("stream %s hides its versions before %d (truncated)", e.StreamID, e.First)
}

// Is makes errors.Is(err, ErrTruncated) hold.
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

// StreamMetadata are a stream's lifecycle settings, kept in streams.metadata. Zero fields are
// unset.
type StreamMetadata struct {
	// TruncateBefore hides the stream's events before this version from stream reads. It only
	// moves forward: hidden events may already be deleted.
	TruncateBefore int64
	// MaxAge hides events recorded longer ago than this (whole seconds).
	MaxAge time.Duration
	// MaxCount keeps only the stream's last MaxCount events visible.
	MaxCount int64
}

// storedMetadata is StreamMetadata as streams.metadata holds it: maxAge in seconds.
type storedMetadata struct {
	TruncateBefore int64 `json:"truncateBefore,omitempty"`
	MaxAge         int64 `json:"maxAge,omitempty"`
	MaxCount       int64 `json:"maxCount,omitempty"`
}

func (m StreamMetadata) stored() storedMetadata {
	return storedMetadata{TruncateBefore: m.TruncateBefore, MaxAge: int64(m.MaxAge / time.Second), MaxCount: m.MaxCount}
}

func (m storedMetadata) metadata() StreamMetadata {
	return StreamMetadata{TruncateBefore: m.TruncateBefore, MaxAge: time.Duration(m.MaxAge) * time.Second, MaxCount: m.MaxCount}
}

// FirstVersion is the first version stream reads return of a stream at version, by
// TruncateBefore and MaxCount (MaxAge hides events one by one, by their time).
func (m StreamMetadata) FirstVersion(version int64) int64 {
	first := max(1, m.TruncateBefore)
	if m.MaxCount > 0 {
		first = max(first, version-m.MaxCount+1)
	}
	return first
}

// MaxMaxAge bounds maxAge: about a hundred years, far inside what PostgreSQL's intervals hold.
const MaxMaxAge = 100 * 365 * 24 * time.Hour

// validate checks settings a client sent.
func (m StreamMetadata) validate() error {
	switch {
	case m.TruncateBefore < 0:
		return &ValidationError{Field: "truncateBefore", Reason: fmt.Sprintf("%d is negative", m.TruncateBefore)}
	case m.MaxCount < 0:
		return &ValidationError{Field: "maxCount", Reason: fmt.Sprintf("%d is negative", m.MaxCount)}
	case m.MaxAge < 0:
		return &ValidationError{Field: "maxAge", Reason: "is negative"}
	case m.MaxAge%time.Second != 0:
		return &ValidationError{Field: "maxAge", Reason: "must be whole seconds"}
	case m.MaxAge > MaxMaxAge:
		return &ValidationError{Field: "maxAge", Reason: fmt.Sprintf("is longer than %d seconds", int64(MaxMaxAge/time.Second))}
	}
	return nil
}

// checkReserved refuses event types that start with '$': they belong to the store.
func checkReserved(in appendInput) error {
	for i, t := range in.types {
		if strings.HasPrefix(t, "$") {
			return atEvent(i, &ValidationError{Field: "type", Reason: fmt.Sprintf("%q: types starting with $ are reserved for the store (deleteStream writes %s)", truncate(t, 64), StreamDeletedType)})
		}
	}
	return nil
}

// DeleteStream soft-deletes a stream: it appends a tombstone (StreamDeletedType, data {}) if
// the stream is at the expected version, and marks the stream deleted, in one transaction.
// Afterwards ReadStream returns a *StreamDeletedError, appends are refused with one, and the
// events before the tombstone are left to the Scavenger; ReadAll still returns every event,
// the tombstone included, in its place in the global order. An append with expected version
// NoStream recreates the stream: its versions continue after the tombstone, and the events up
// to the tombstone stay hidden (truncateBefore). A stream that does not exist is
// ErrStreamNotFound; one deleted already, a *StreamDeletedError.
func (s *Store) DeleteStream(ctx context.Context, streamID string, expected ExpectedVersion) (AppendResult, error) {
	in, err := s.prepare(streamID, expected, []EventData{{Type: StreamDeletedType, Data: emptyObject}})
	if err != nil {
		return AppendResult{}, err
	}
	if v, ok := expected.Value(); ok && v == 0 {
		return AppendResult{}, &ValidationError{Field: "expectedVersion", Reason: "0 means the stream does not exist; there would be nothing to delete"}
	}
	var res AppendResult
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if res, err = s.insertInTx(ctx, tx, streamID, expected, in); err != nil {
			return err
		}
		if res.NextExpectedVersion == 1 { // the tombstone would have created the stream
			return fmt.Errorf("delete %s: %w", streamID, ErrStreamNotFound)
		}
		_, err = tx.Exec(ctx, pgsql.EventstoreMarkDeleted, streamID)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrStreamNotFound) {
			return AppendResult{}, err
		}
		if deleted := s.deletedError(ctx, []string{streamID}, err); deleted != nil {
			return AppendResult{}, deleted
		}
		var wrong *WrongExpectedVersionError
		if errors.As(err, &wrong) && wrong.Actual == 0 {
			return AppendResult{}, fmt.Errorf("delete %s: %w", streamID, ErrStreamNotFound)
		}
		if errors.As(err, &wrong) {
			return AppendResult{}, err
		}
		return AppendResult{}, fmt.Errorf("delete %s: %w", streamID, err)
	}
	s.appended(streamID)
	return res, nil
}

// deletedError turns an append's refusal into a *StreamDeletedError when one of its streams is
// deleted: the append hit streams_deleted_check, or its expected version could not match a
// deleted stream's. It returns nil when err is something else.
func (s *Store) deletedError(ctx context.Context, streams []string, err error) error {
	var pgErr *pgconn.PgError
	var wrong *WrongExpectedVersionError
	hitCheck := errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.ConstraintName == "streams_deleted_check"
	if !hitCheck && !errors.As(err, &wrong) {
		return nil
	}
	var (
		id      string
		version int64
	)
	lookErr := s.pool.QueryRow(ctx, pgsql.EventstoreDeletedStream, streams).Scan(&id, &version)
	switch {
	case lookErr == nil:
		return &StreamDeletedError{StreamID: id, Version: version}
	case hitCheck && errors.Is(lookErr, pgx.ErrNoRows):
		// Recreated between the append and the look-up: nothing was written, and the append
		// may be tried again.
		return fmt.Errorf("append to %s: the stream was recreated meanwhile; retry: %w", streams[0], err)
	case hitCheck:
		return fmt.Errorf("append to %s: look up deletion: %w", streams[0], lookErr)
	}
	return nil
}

// refused finishes an Append that the store refused: a deleted stream is recreated when the
// append expected NoStream, and otherwise the refusal becomes a *StreamDeletedError (unless
// the call repeats an append that succeeded before the deletion).
func (s *Store) refused(ctx context.Context, streamID string, expected ExpectedVersion, in appendInput, err error) (AppendResult, error) {
	deleted := s.deletedError(ctx, []string{streamID}, err)
	var del *StreamDeletedError
	if !errors.As(deleted, &del) {
		if deleted != nil {
			return AppendResult{}, deleted
		}
		return AppendResult{}, err
	}
	if v, ok := expected.Value(); ok && v == 0 {
		return s.recreate(ctx, streamID, in)
	}
	return s.repeated(ctx, streamID, expected, in, del)
}

// recreate appends in to a deleted stream after its tombstone, in one transaction with the
// undeletion, so that a failed append leaves the stream deleted.
func (s *Store) recreate(ctx context.Context, streamID string, in appendInput) (AppendResult, error) {
	var res AppendResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var version int64
		err := tx.QueryRow(ctx, pgsql.EventstoreRecreate, streamID).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) { // recreated by someone else meanwhile
			var actual int64
			if err := tx.QueryRow(ctx, pgsql.EventstoreStreamVersion, streamID).Scan(&actual); err != nil {
				return err
			}
			return &WrongExpectedVersionError{StreamID: streamID, Expected: 0, Actual: actual}
		}
		if err != nil {
			return err
		}
		res, err = s.insertInTx(ctx, tx, streamID, Exactly(version), in)
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		var wrong *WrongExpectedVersionError
		switch {
		case errors.As(err, &wrong):
			return AppendResult{}, err
		case errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "22":
			return AppendResult{}, &ValidationError{Field: "events", Reason: pgErr.Message}
		case errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "event_ids_pkey":
			return s.repeated(ctx, streamID, NoStream(), in, nil)
		}
		return AppendResult{}, fmt.Errorf("recreate %s: %w", streamID, err)
	}
	s.appended(streamID)
	return res, nil
}

// SetStreamMetadata sets a stream's lifecycle settings, replacing the ones it had. Reads hide
// what the new settings hide at once. TruncateBefore may not move back (events before it may
// be deleted already) nor beyond the version after the stream's last event. The store knows
// nothing of aggregates: truncating a stream that an aggregate is loaded from needs a snapshot
// at TruncateBefore-1 first (the command layer takes it).
func (s *Store) SetStreamMetadata(ctx context.Context, streamID string, m StreamMetadata) (StreamInfo, error) {
	if err := validateName("streamId", streamID, MaxStreamIDLen); err != nil {
		return StreamInfo{}, err
	}
	if err := m.validate(); err != nil {
		return StreamInfo{}, err
	}
	b, err := json.Marshal(m.stored())
	if err != nil {
		return StreamInfo{}, err
	}
	var info StreamInfo
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR UPDATE: settings are changed one at a time, checked against the settings they
		// replace. Appends only wait for the row, as they do for one another's.
		var (
			version int64
			deleted *int64
			old     storedMetadata
		)
		err := tx.QueryRow(ctx, pgsql.EventstoreStreamForUpdate, streamID).Scan(&version, &deleted, &old)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("stream %s: %w", streamID, ErrStreamNotFound)
		}
		if err != nil {
			return err
		}
		if deleted != nil {
			return &StreamDeletedError{StreamID: streamID, Version: *deleted}
		}
		switch {
		case m.TruncateBefore < old.TruncateBefore:
			return &ValidationError{Field: "truncateBefore", Reason: fmt.Sprintf("is %d and can only move forward: events before it may already be deleted", old.TruncateBefore)}
		case m.TruncateBefore > version+1:
			return &ValidationError{Field: "truncateBefore", Reason: fmt.Sprintf("%d is beyond the stream's next version, %d", m.TruncateBefore, version+1)}
		}
		info = StreamInfo{ID: streamID, Version: version, Metadata: m}
		// Only these settings' keys are replaced: the column may carry others.
		_, err = tx.Exec(ctx, pgsql.EventstoreSetStreamMetadata, streamID, b)
		return err
	})
	if err != nil {
		return StreamInfo{}, fmt.Errorf("set metadata of %s: %w", streamID, err)
	}
	return info, nil
}
