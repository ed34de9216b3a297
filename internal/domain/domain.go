// Package domain holds what Strata's aggregates share: invariant errors, not-found, and money.
// Aggregates live in its subpackages (user, order), each one pure: state, events, Apply and
// Decide, with no storage and no I/O. docs/aggregates.md shows how to add one.
package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvariant is matched (errors.Is) by every *InvariantError.
var ErrInvariant = errors.New("invariant violated")

// ErrUnknownEvent is returned by an aggregate's Decode for an event type it does not know (a
// type added by newer code, or written by an integration through appendEvents): aggregates and
// projections ignore such events.
var ErrUnknownEvent = errors.New("unknown event type")

// ErrNotFound means the aggregate a command names has no events.
var ErrNotFound = errors.New("not found")

// InvariantError says which business rule a command would break. Rule is a stable name that
// clients may match on (extensions.rule in GraphQL); Reason is for people.
type InvariantError struct {
	Rule   string
	Reason string
}

func (e *InvariantError) Error() string { return e.Reason }

// Is makes errors.Is(err, ErrInvariant) hold.
func (e *InvariantError) Is(target error) bool { return target == ErrInvariant }

// Broken returns an *InvariantError for rule.
func Broken(rule, format string, args ...any) error {
	return &InvariantError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Money is an amount in minor units (cents): never a float. Events carry it as a JSON integer.
type Money int64

// MaxMoney bounds every amount, so that sums of amounts cannot overflow: 10^15 minor units.
const MaxMoney Money = 1_000_000_000_000_000

// ErrBadMoney is matched by the errors of ParseMoney.
var ErrBadMoney = errors.New("invalid money")

// ParseMoney reads a decimal string with at most two fraction digits ("19.98", "5", "0.5") into
// minor units. Signs, exponents, spaces and more than two fraction digits are refused.
func ParseMoney(s string) (Money, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || hasDot && (frac == "" || len(frac) > 2 || !digits(frac)) {
		return 0, fmt.Errorf("%w: %q is not a decimal amount with at most 2 fraction digits, like \"19.98\"", ErrBadMoney, s)
	}
	// MaxMoney has 14 whole digits; a longer number could overflow below. Leading zeros do not
	// count: "000000000000001" is 1.
	if len(strings.TrimLeft(whole, "0")) > 14 {
		return 0, fmt.Errorf("%w: %q is more than the largest amount, %s", ErrBadMoney, s, MaxMoney)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrBadMoney, s, err)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrBadMoney, s, err)
	}
	m := Money(w*100 + f)
	if m > MaxMoney {
		return 0, fmt.Errorf("%w: %q is more than the largest amount, %s", ErrBadMoney, s, MaxMoney)
	}
	return m, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns m as a decimal with two fraction digits: 1998 is "19.98".
func (m Money) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%02d", sign, m/100, m%100)
}

// Upcaster turns the payload of events of Type at schema version From into the shape of From+1.
// Upcasters are pure; the event store applies them when events are read, so aggregates,
// projections and clients only see current shapes, and stored bytes never change.
type Upcaster struct {
	Type string
	From int
	Up   func(data []byte) ([]byte, error)
}

// MoneyFromJSONNumber converts a JSON number written as a decimal amount of whole units (a float
// in an old payload, e.g. 9.99) into minor units, reading its decimal text, never a float64:
// more than two fraction digits round half away from zero.
func MoneyFromJSONNumber(n string) (Money, error) {
	neg := strings.HasPrefix(n, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(n, "-"), ".")
	if whole == "" || !digits(whole) || !digits(frac) || len(whole) > 14 {
		return 0, fmt.Errorf("%w: %q is not a plain decimal amount", ErrBadMoney, n)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrBadMoney, n, err)
	}
	frac += "000"
	cents, err := strconv.ParseInt(frac[:2], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrBadMoney, n, err)
	}
	m := Money(w*100 + cents)
	if frac[2] >= '5' {
		m++
	}
	if m > MaxMoney {
		return 0, fmt.Errorf("%w: %q is more than the largest amount", ErrBadMoney, n)
	}
	if neg {
		m = -m
	}
	return m, nil
}

// Redacted is what a personal field reads as once its subject has been forgotten (the event
// store's eventstore.Redacted): aggregates must accept it wherever a personal field is read.
const Redacted = "[redacted]"

// PersonalFields marks the personal fields of an aggregate's events: Types maps an event type
// to the names of its top-level fields that hold personal data. Their subject is the aggregate
// (the stream "<Category>-<id>"): the command layer stores them encrypted with the subject's
// key, and forgetting the subject deletes the key. docs/aggregates.md shows how to mark one.
type PersonalFields struct {
	Category string
	Types    map[string][]string
}
