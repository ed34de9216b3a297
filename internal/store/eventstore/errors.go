package eventstore

import (
	"errors"
	"fmt"
)

// ErrWrongExpectedVersion is matched (errors.Is) by every *WrongExpectedVersionError.
var ErrWrongExpectedVersion = errors.New("wrong expected version")

// ErrInvalidInput is matched (errors.Is) by every *ValidationError: the request was refused
// before anything was written.
var ErrInvalidInput = errors.New("invalid input")

// ErrDuplicateEventID is matched (errors.Is) by every *DuplicateEventIDError.
var ErrDuplicateEventID = errors.New("duplicate event id")

// ErrStreamNotFound means the stream has no events.
var ErrStreamNotFound = errors.New("stream not found")

// WrongExpectedVersionError is returned by Append when the stream is not at the version the
// caller expected. Nothing was written.
type WrongExpectedVersionError struct {
	StreamID string
	Expected int64 // the version the caller expected; 0 means "the stream must not exist"
	Actual   int64 // the stream's version when the append was checked; 0 when it does not exist
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("append to %s: expected version %d, stream is at version %d", e.StreamID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) hold.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// ValidationError describes input that Strata refuses. Nothing was written.
type ValidationError struct {
	Field  string // which input, e.g. "streamId" or "events[3].data"
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalidInput) hold.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

// DuplicateEventIDError is returned by Append when an event id is already stored and the call is
// not a repeat of the append that stored it (another stream, other content, another expected
// version). Nothing was written.
type DuplicateEventIDError struct {
	EventID  string
	StreamID string // the stream holding the stored event, when known
}

func (e *DuplicateEventIDError) Error() string {
	if e.StreamID != "" {
		return fmt.Sprintf("event id %s is already stored in stream %s with other content or at another version", e.EventID, e.StreamID)
	}
	return fmt.Sprintf("event id %s is already stored", e.EventID)
}

// Is makes errors.Is(err, ErrDuplicateEventID) hold.
func (e *DuplicateEventIDError) Is(target error) bool { return target == ErrDuplicateEventID }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
