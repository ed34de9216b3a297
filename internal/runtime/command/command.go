// Package command runs the domain's commands: load an aggregate from its events, decide with
// the domain's pure Decide, and append the new events with the loaded version as the expected
// version. A version conflict means someone else wrote first: the command is tried again from a
// fresh load when it does not depend on what the caller saw, and goes back to the caller when
// the caller passed an expected version of its own.
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// DefaultMaxAttempts is how often a command is tried when others keep writing first.
const DefaultMaxAttempts = 5

// Options configures a Handler.
type Options struct {
	// MaxAttempts bounds the tries of one command under version conflicts; 0 means
	// DefaultMaxAttempts.
	MaxAttempts int
	// SnapshotEvery is, per stream category ("user", "order"), how many events a load may
	// replay past the newest snapshot before it leaves a new one; absent or 0: no snapshots.
	SnapshotEvery map[string]int
	// ReadOnly makes a handler that replays only, on a store that reads a read replica: it
	// saves no snapshots (a standby refuses writes). Its commands are not to be run.
	ReadOnly bool
	// Aggregates are the registered aggregates; nil: aggregates.All().
	Aggregates []domain.Kind
	// TracerProvider makes a span per command (trace.go); nil: the global one.
	TracerProvider trace.TracerProvider
}

// Handler runs commands against the event store. It is safe for concurrent use.
type Handler struct {
	store  *eventstore.Store
	opts   Options
	kinds  []domain.Kind
	dryRun bool
	tracer trace.Tracer
}

// DryRun returns a Handler whose commands load, check and decide as usual, and return the events
// they would append and the state that would result, but write nothing.
func (h *Handler) DryRun() *Handler {
	d := *h
	d.dryRun = true
	return &d
}

// Planned is an event a command appended, or would append in a dry run.
type Planned struct {
	StreamID      string
	Version       int64
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Tags          []string
}

// commit appends parts, or in a dry run only lists what it would append. It returns the events
// and the position of the last event written (zero in a dry run). When subject is not
// empty it also forgets the subject in the append's transaction (eventstore.ForgetAndAppend),
// deleting the snapshots of the first part's stream.
func (h *Handler) commit(ctx context.Context, parts []eventstore.StreamAppend, subject string, cond *eventstore.Condition) ([]Planned, eventstore.Position, error) {
	var planned []Planned
	if h.dryRun {
		for _, p := range parts {
			v, _ := p.Expected.Value()
			for i, e := range p.Events {
				planned = append(planned, Planned{StreamID: p.StreamID, Version: v + int64(i) + 1, Type: e.Type, SchemaVersion: max(e.SchemaVersion, 1), Data: e.Data, Tags: e.Tags})
			}
		}
		return planned, eventstore.Position{}, nil
	}
	// Personal fields are sealed on a copy, so that a retry starts from the clear again; what
	// the command returns shows them in the clear, as reads do.
	plain := make([][]json.RawMessage, len(parts))
	sealed := make([]eventstore.StreamAppend, len(parts))
	for i, p := range parts {
		events := slices.Clone(p.Events)
		for _, e := range events {
			plain[i] = append(plain[i], e.Data)
		}
		if err := h.store.Seal(ctx, p.StreamID, events); err != nil {
			return nil, eventstore.Position{}, err
		}
		p.Events = events
		sealed[i] = p
	}
	var res []eventstore.AppendResult
	if cond != nil {
		if subject != "" {
			return nil, eventstore.Position{}, errors.New("command: a write that forgets a subject takes no condition")
		}
		var err error
		if res, err = h.store.AppendMultiIf(ctx, sealed, cond); err != nil {
			return nil, eventstore.Position{}, err
		}
	} else if subject != "" {
		var err error
		if res, err = h.store.ForgetAndAppend(ctx, subject, []string{sealed[0].StreamID}, sealed); err != nil {
			return nil, eventstore.Position{}, err
		}
	} else if len(sealed) == 1 {
		r, err := h.store.Append(ctx, sealed[0].StreamID, sealed[0].Expected, sealed[0].Events)
		if err != nil {
			return nil, eventstore.Position{}, err
		}
		res = []eventstore.AppendResult{r}
	} else {
		var err error
		if res, err = h.store.AppendMulti(ctx, sealed); err != nil {
			return nil, eventstore.Position{}, err
		}
	}
	for i, r := range res {
		for j, e := range r.Events {
			data := e.Data
			if i < len(plain) && j < len(plain[i]) {
				data = plain[i][j]
			}
			planned = append(planned, Planned{StreamID: e.StreamID, Version: e.Version, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: data, Tags: e.Tags})
		}
	}
	// The position of the write's last event, in whichever stream: consistentWith on it waits
	// for everything the command wrote (the stock an order reserved, say).
	last := res[0].Position
	for _, r := range res[1:] {
		if len(r.Events) > 0 && r.Position.Compare(last) > 0 {
			last = r.Position
		}
	}
	return planned, last, nil
}

// New returns a Handler on store.
func New(store *eventstore.Store, opts Options) *Handler {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	kinds := opts.Aggregates
	if kinds == nil {
		kinds = aggregates.All()
	}
	return &Handler{store: store, opts: opts, kinds: kinds, tracer: newTracer(opts.TracerProvider)}
}

// Aggregates returns the registered aggregates.
func (h *Handler) Aggregates() []domain.Kind { return h.kinds }

// Store returns the event store the handler writes to.
func (h *Handler) Store() *eventstore.Store { return h.store }

// conditionWait bounds the wait, after a write's condition failed, until reads show the event
// that failed it.
const conditionWait = 10 * time.Second

// retry runs try until it succeeds, fails with anything but a version conflict or a failed
// condition, or has been tried maxAttempts times (the handler's MaxAttempts when 0). A conflict on the stream named own goes straight back to the caller
// when callerExpected: the caller asked for the version it saw, and it is gone.
func (h *Handler) retry(ctx context.Context, own string, callerExpected bool, maxAttempts int, try func() error) error {
	if maxAttempts <= 0 {
		maxAttempts = h.opts.MaxAttempts
	}
	for attempt := 1; ; attempt++ {
		err := try()
		var wrong *eventstore.WrongExpectedVersionError
		var failed *eventstore.ConditionFailedError
		switch {
		case attempt >= maxAttempts:
			return err
		case errors.As(err, &failed):
			// What the command read changed meanwhile: read again, once reads show the event
			// that failed the condition (reads stop below transactions still running, and an
			// older one may hold them back for a moment).
			if _, err := h.store.WaitReadable(ctx, failed.Position, conditionWait); err != nil {
				return err
			}
		case !errors.As(err, &wrong) || callerExpected && wrong.StreamID == own:
			return err
		}
		// Back off a little, with jitter, so that writers who collided do not collide again.
		d := time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond))) //nolint:gosec // jitter needs no crypto
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(d):
		}
	}
}

// checkExpected refuses a command whose caller expected another version than the one loaded.
func checkExpected(streamID string, expected *int64, loaded int64) error {
	if expected != nil && *expected != loaded {
		return &eventstore.WrongExpectedVersionError{StreamID: streamID, Expected: *expected, Actual: loaded}
	}
	return nil
}

// expectedOf is the store's expected version for an aggregate loaded at version v.
func expectedOf(v int64) eventstore.ExpectedVersion {
	if v == 0 {
		return eventstore.NoStream()
	}
	return eventstore.Exactly(v)
}

// ParseID checks an aggregate id given by a client: a uuid in its canonical form.
func ParseID(field, id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return "", &eventstore.ValidationError{Field: field, Reason: fmt.Sprintf("%q is not an id (a lower-case uuid)", truncate(id, 64))}
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NewID returns a fresh aggregate id (a UUIDv7: ids sort roughly by creation time).
func NewID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("make id: %w", err)
	}
	return id.String(), nil
}

// typed is a domain event as stored: its type name and JSON.
type typed interface{ EventType() string }

// Upcasters are the registered aggregates' upcasters, for the store's Options.
func Upcasters(kinds []domain.Kind) []eventstore.Upcaster {
	var out []eventstore.Upcaster
	for _, k := range kinds {
		for _, u := range k.Describe().Upcasters {
			up := u.Up
			out = append(out, eventstore.Upcaster{Type: u.Type, From: u.From, Up: func(data json.RawMessage) (json.RawMessage, error) { return up(data) }})
		}
	}
	return out
}

// PersonalFields are the registered aggregates' marks of personal fields, for the store's
// Options.
func PersonalFields(kinds []domain.Kind) []eventstore.PersonalFields {
	var out []eventstore.PersonalFields
	for _, k := range kinds {
		if d := k.Describe(); len(d.Personal) > 0 {
			out = append(out, eventstore.PersonalFields{Category: d.Category, Types: d.Personal})
		}
	}
	return out
}

// subjectOf is the subject whose personal data a state of streamID holds, or "" when its
// aggregate has no personal fields: a snapshot of such a state must not outlive forgetting.
func (h *Handler) subjectOf(streamID string) string {
	k, err := h.kindOf(streamID)
	if err != nil || len(k.Describe().Personal) == 0 {
		return ""
	}
	return strings.TrimPrefix(streamID, k.Describe().Category+"-")
}

// eventData encodes domain events for the store, with metadata naming the command.
func eventData[E typed](command string, events []E) ([]eventstore.EventData, error) {
	md, err := json.Marshal(map[string]string{"command": command})
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = eventstore.EventData{Type: e.EventType(), Data: data, Metadata: md}
		if v, ok := any(e).(interface{ SchemaVersion() int }); ok {
			out[i].SchemaVersion = v.SchemaVersion()
		}
	}
	return out, nil
}

// readAll reads a whole stream in version order; a stream that does not exist is empty.
func (h *Handler) readAll(ctx context.Context, streamID string, fn func(eventstore.RecordedEvent) error) error {
	return h.readFrom(ctx, streamID, 1, 0, fn)
}

// readFrom reads a stream in version order from version from up to version to (0: the end).
func (h *Handler) readFrom(ctx context.Context, streamID string, from, to int64, fn func(eventstore.RecordedEvent) error) error {
	for {
		n := int64(readPage)
		if to > 0 {
			if n = min(n, to-from+1); n <= 0 {
				return nil
			}
		}
		slice, err := h.store.ReadStream(ctx, streamID, eventstore.ReadStreamOptions{From: from, Max: int(n)})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if slice.FirstVersion > from {
			// The stream hides versions before FirstVersion (truncateBefore): a fold from
			// version from would miss them. replay starts over from a snapshot.
			return &eventstore.TruncatedError{StreamID: streamID, Version: from, First: slice.FirstVersion}
		}
		if len(slice.Events) == 0 && slice.Version >= from {
			// The stream has versions from on, but none is stored: all of them are archived.
			return fmt.Errorf("%s: versions %d to %d are archived; restore them (strata restore) to load it", streamID, from, slice.Version)
		}
		if len(slice.Events) > 0 && slice.Events[0].Version != from {
			// The events before are archived (strata archive): folding from here would build a
			// wrong state, so the load fails until they are restored or a snapshot covers them.
			return fmt.Errorf("%s: versions %d to %d are archived; restore them (strata restore) to load it", streamID, from, slice.Events[0].Version-1)
		}
		for _, e := range slice.Events {
			if err := fn(e); err != nil {
				return fmt.Errorf("%s version %d: %w", streamID, e.Version, err)
			}
		}
		if int64(len(slice.Events)) < n {
			return nil
		}
		from = slice.Events[len(slice.Events)-1].Version + 1
	}
}

const readPage = 1000

// notFound wraps domain.ErrNotFound with what was looked for.
func notFound(what, id string) error { return fmt.Errorf("%s %s: %w", what, id, domain.ErrNotFound) }
