package eventstore

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
)

// Position is an event's place in the global order: the id of the transaction that appended it,
// then the number the database handed it within the log. Positions compare in the order every
// reader of ReadAll sees events. Clients see positions as opaque strings (String) that sort in
// the same order as the positions they stand for, and resume from them with ParsePosition.
// The zero Position is before every event.
type Position struct {
	tx  uint64
	seq int64
}

// txArg is the position's transaction id as a statement takes it where pgx has no xid8 to
// encode to (arrays): decimal text, which the statement casts.
func (p Position) txArg() string { return strconv.FormatUint(p.tx, 10) }

// positionLen is the length of Position.String: two 64-bit numbers in fixed-width hex, so that
// comparing strings compares positions.
const positionLen = 32

// Compare returns -1, 0 or +1 as p is before, equal to or after q in the global order.
func (p Position) Compare(q Position) int {
	switch {
	case p.tx < q.tx:
		return -1
	case p.tx > q.tx:
		return 1
	case p.seq < q.seq:
		return -1
	case p.seq > q.seq:
		return 1
	}
	return 0
}

// Seq returns the number the database handed the event when it was inserted, 0 for the zero
// Position. Numbers grow with every event appended, but concurrent appends draw them in the
// order they insert, not in the global order: Seq is for graphs of progress (metrics), never
// for comparing positions.
func (p Position) Seq() int64 { return p.seq }

// IsZero reports whether p is the position before every event.
func (p Position) IsZero() bool { return p == Position{} }

// String returns the opaque cursor form of p: 32 lowercase hex digits. The zero Position is "".
func (p Position) String() string {
	if p.IsZero() {
		return ""
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], p.tx)
	binary.BigEndian.PutUint64(b[8:], uint64(p.seq)) //nolint:gosec // seq is a positive identity value
	return hex.EncodeToString(b[:])
}

// MarshalText implements encoding.TextMarshaler with String's form.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePosition.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePosition parses a cursor made by Position.String. The empty string is the zero Position.
// Anything else that String cannot have produced is an error wrapping ErrInvalidInput.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	bad := func() (Position, error) {
		return Position{}, &ValidationError{Field: "position", Reason: fmt.Sprintf("%q is not a position this store handed out", truncate(s, 64))}
	}
	if len(s) != positionLen {
		return bad()
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return bad()
	}
	if hex.EncodeToString(b[:]) != s { // upper-case digits would decode but not sort like ours
		return bad()
	}
	seq := binary.BigEndian.Uint64(b[8:])
	if seq > 1<<63-1 {
		return bad()
	}
	p := Position{tx: binary.BigEndian.Uint64(b[:8]), seq: int64(seq)}
	if p.IsZero() {
		return bad()
	}
	return p, nil
}

// Before returns the last position before p in the global order, so that reading after it
// starts at p (ReadAll's After is exclusive). The zero Position has none: Before returns it.
func (p Position) Before() Position {
	switch {
	case p.IsZero():
		return p
	case p.seq > 0:
		return Position{tx: p.tx, seq: p.seq - 1}
	}
	return Position{tx: p.tx - 1, seq: math.MaxInt64}
}
