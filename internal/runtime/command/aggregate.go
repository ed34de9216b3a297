package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// Aggregate is the runtime of one declared aggregate (domain.Aggregate) on a Handler: loads with
// snapshots, commands, history, and the state at a version or a time. It holds nothing but the
// two, so making one per call costs nothing.
type Aggregate[S any, E domain.Event, C any] struct {
	def domain.Aggregate[S, E, C]
	h   *Handler
}

// For returns the runtime of def on h.
func For[S any, E domain.Event, C any](h *Handler, def domain.Aggregate[S, E, C]) Aggregate[S, E, C] {
	return Aggregate[S, E, C]{def: def, h: h}
}

// Definition returns the aggregate's declaration.
func (a Aggregate[S, E, C]) Definition() domain.Aggregate[S, E, C] { return a.def }

// Apply folds a stored event into l: the state after it, and whether the aggregate knows the
// event's type (an unknown type changes nothing but the version). A payload that cannot be
// decoded, or that an upcaster refused, is an error.
func (a Aggregate[S, E, C]) Apply(l Loaded[S], e eventstore.RecordedEvent) (Loaded[S], bool, error) {
	return foldStored(l, e, a.def.Apply)
}

// foldStored folds a stored event into l with apply (a declaration's Apply): an event whose
// payload an upcaster refused is an error, and moves only the version.
func foldStored[S any](l Loaded[S], e eventstore.RecordedEvent, apply func(S, string, []byte, int64) (S, bool, error)) (Loaded[S], bool, error) {
	if e.UpcastErr != nil {
		return Loaded[S]{State: l.State, Version: e.Version}, false, e.UpcastErr
	}
	s, known, err := apply(l.State, e.Type, e.Data, e.Version)
	return Loaded[S]{State: s, Version: e.Version}, known, err
}

func (a Aggregate[S, E, C]) folder() folder[S] {
	return folder[S]{shape: a.def.Shape, apply: a.Apply, unmarshal: func(b []byte) (S, error) {
		var s S
		err := json.Unmarshal(b, &s)
		return s, err
	}}
}

// Load replays the aggregate with this id, from its newest snapshot; one that does not exist is
// the zero Loaded.
func (a Aggregate[S, E, C]) Load(ctx context.Context, id string) (Loaded[S], error) {
	return a.Until(ctx, id, Until{})
}

// Until replays the aggregate up to u; one that did not exist then is the zero Loaded.
func (a Aggregate[S, E, C]) Until(ctx context.Context, id string, u Until) (Loaded[S], error) {
	return replay(ctx, a.h, a.def.Stream(id), a.folder(), u, nil)
}

// At replays the aggregate's whole stream, without snapshots, and returns its state with the
// position of its last event: where a subscription to it takes over.
func (a Aggregate[S, E, C]) At(ctx context.Context, id string) (Loaded[S], eventstore.Position, error) {
	var at eventstore.Position
	l, err := replay(ctx, a.h, a.def.Stream(id), a.folder(), Until{}, func(st Step[S]) { at = st.Event.Position })
	return l, at, err
}

// History returns every event of the aggregate with the state after it, in version order.
func (a Aggregate[S, E, C]) History(ctx context.Context, id string) ([]Step[S], error) {
	var steps []Step[S]
	_, err := replay(ctx, a.h, a.def.Stream(id), a.folder(), Until{}, func(s Step[S]) { steps = append(steps, s) })
	return steps, err
}

// Fields is l as clients see it: none while the aggregate does not exist.
func (a Aggregate[S, E, C]) Fields(l Loaded[S]) []domain.Field {
	if !l.Exists() {
		return nil
	}
	return a.def.FieldsOf(l.State)
}

// Call is one command on an aggregate.
type Call[S any, C any] struct {
	// Name is the command's name, recorded in its events' metadata ("payOrder").
	Name string
	// ID is the aggregate's id: an existing one, or a fresh one for a command that creates.
	ID string
	// New says ID is fresh (newID): nothing is loaded, and the write expects no stream.
	New bool
	// Expected, when set, is the version the caller saw: a command on an aggregate at another
	// version is refused with a *eventstore.WrongExpectedVersionError, and a conflict on its
	// stream goes back to the caller instead of being tried again.
	Expected *int64
	// Command is the command to decide, unless Prepare is set.
	Command C
	// Prepare, when set, makes the command from the loaded state at each attempt; it may read
	// other streams and add them to the write (Write.Check, Write.Also), so that the write
	// fails when they changed meanwhile.
	Prepare func(ctx context.Context, l Loaded[S], w *Write) (C, error)
	// Then, when set, adds to the write what the decided events imply elsewhere (claims).
	Then func(ctx context.Context, l Loaded[S], events []domain.Event, w *Write) error
	// MaxAttempts, when set, is how often the command is tried before a conflict goes back to
	// the caller, instead of the handler's: a command that many writers contend for (orders
	// reserving one product's stock) needs more.
	MaxAttempts int
}

// Write is what one attempt of a command writes besides the aggregate's own events: other
// streams' events and checks, all in the aggregate's append, all or nothing.
type Write struct {
	parts  []eventstore.StreamAppend
	forget string
	tags   []string
	cond   *eventstore.Condition
}

// Tag adds tags to each of the aggregate's own events of the write.
func (w *Write) Tag(tags ...string) {
	for _, t := range tags {
		if !slices.Contains(w.tags, t) {
			w.tags = append(w.tags, t)
		}
	}
}

// Require makes the write conditional (eventstore.Condition): it fails, and the command is tried
// again, when an event matching c's query was appended after c's read. A write has one
// condition: its read must be one read, so that one position ends it.
func (w *Write) Require(c *eventstore.Condition) {
	if w.cond != nil {
		panic("command: a write has one condition")
	}
	w.cond = c
}

// Check holds streamID at version v until the write commits, writing nothing to it: the write
// fails with a version conflict (and the command is tried again) when it moved meanwhile.
func (w *Write) Check(streamID string, v int64) {
	w.parts = append(w.parts, eventstore.StreamAppend{StreamID: streamID, Expected: expectedOf(v)})
}

// Also appends events to another stream, expected at version v, in the same write.
func (w *Write) Also(streamID string, v int64, events []eventstore.EventData) {
	w.parts = append(w.parts, eventstore.StreamAppend{StreamID: streamID, Expected: expectedOf(v), Events: events})
}

// Forget forgets subject (its personal data's key) in the write's transaction.
func (w *Write) Forget(subject string) { w.forget = subject }

// Result is an aggregate after a command, the position of its last event (zero in a dry run),
// and the events the command appended (or would append).
type Result[S any] struct {
	Loaded[S]
	Position eventstore.Position
	Events   []Planned
	DryRun   bool
}

// Execute runs a command: load (from a snapshot) → decide → append at the loaded version, tried
// again from a fresh load when another writer came first and the caller did not ask for a
// version of their own. A command on an aggregate that does not exist fails with an error
// wrapping domain.ErrNotFound that names it.
func (a Aggregate[S, E, C]) Execute(ctx context.Context, c Call[S, C]) (_ Result[S], err error) {
	streamID := a.def.Stream(c.ID)
	ctx, span := a.h.startCommand(ctx, c.Name, a.def.Name, streamID)
	defer func() { endCommand(span, err) }()
	var out Result[S]
	err = a.h.retry(ctx, streamID, c.Expected != nil, c.MaxAttempts, func() error {
		var l Loaded[S]
		if !c.New {
			var err error
			if l, err = a.Load(ctx, c.ID); err != nil {
				return err
			}
		}
		if err := checkExpected(streamID, c.Expected, l.Version); err != nil && l.Exists() {
			return err
		}
		var w Write
		cmd := c.Command
		if c.Prepare != nil {
			var err error
			if cmd, err = c.Prepare(ctx, l, &w); err != nil {
				return err
			}
		}
		events, err := a.def.Decide(l.State, cmd)
		if err != nil {
			return err
		}
		data, err := eventData(c.Name, events)
		if err != nil {
			return err
		}
		if len(a.def.Unique) > 0 {
			after := l.State
			for i, e := range events {
				after = a.def.Step(after, e, l.Version+int64(i)+1)
			}
			if err := a.claim(ctx, c.ID, l, after, &w); err != nil {
				return err
			}
		}
		if c.Then != nil {
			decided := make([]domain.Event, len(events))
			for i, e := range events {
				decided[i] = e
			}
			if err := c.Then(ctx, l, decided, &w); err != nil {
				return err
			}
		}
		if len(w.tags) > 0 {
			for i := range data {
				data[i].Tags = append(slices.Clone(data[i].Tags), w.tags...)
			}
		}
		parts := append([]eventstore.StreamAppend{{StreamID: streamID, Expected: expectedOf(l.Version), Events: data}}, w.parts...)
		planned, pos, err := a.h.commit(ctx, parts, w.forget, w.cond)
		if err != nil {
			return err
		}
		for _, e := range events {
			l.Version++
			l.State = a.def.Step(l.State, e, l.Version)
		}
		out = Result[S]{Loaded: l, Position: pos, Events: planned, DryRun: a.h.dryRun}
		return nil
	})
	if errors.Is(err, domain.ErrNotFound) {
		return Result[S]{}, notFound(strings.ToLower(a.def.Name), c.ID)
	}
	return out, err
}

// kindFolder is the folder of an aggregate known only as a domain.Kind.
func kindFolder(k domain.Kind) folder[any] {
	f := k.Fold()
	return folder[any]{
		shape: k.Describe().Shape,
		apply: func(l Loaded[any], e eventstore.RecordedEvent) (Loaded[any], bool, error) {
			if l.Version == 0 {
				l.State = f.Zero
			}
			return foldStored(l, e, f.Apply)
		},
		unmarshal: f.Unmarshal,
	}
}

// Kind is the runtime of a registered aggregate known only as a domain.Kind, with its state as
// an any: the replays that serve every aggregate alike, whatever its types (the API's generic
// aggregate field). Like Aggregate it holds nothing but the two.
type Kind struct {
	k domain.Kind
	h *Handler
}

// ForKind returns the runtime of k on h.
func ForKind(h *Handler, k domain.Kind) Kind { return Kind{k: k, h: h} }

func (a Kind) stream(id string) string { return a.k.Describe().Category + "-" + id }

// Until replays the aggregate with this id up to u, as Aggregate.Until does; one that did not
// exist then is the zero Loaded.
func (a Kind) Until(ctx context.Context, id string, u Until) (Loaded[any], error) {
	return replay(ctx, a.h, a.stream(id), kindFolder(a.k), u, nil)
}

// History returns every event of the aggregate with the state after it, in version order.
func (a Kind) History(ctx context.Context, id string) ([]Step[any], error) {
	var steps []Step[any]
	_, err := replay(ctx, a.h, a.stream(id), kindFolder(a.k), Until{}, func(s Step[any]) { steps = append(steps, s) })
	return steps, err
}

// Fields is l as clients see it: none while the aggregate has no events.
func (a Kind) Fields(l Loaded[any]) []domain.Field {
	if !l.Exists() {
		return nil
	}
	return a.k.Fold().Fields(l.State)
}

// Exists reports whether l is of an aggregate that exists: it has events, and its declaration's
// Exists holds (an order stream whose first event is not OrderCreated has events but no order).
func (a Kind) Exists(l Loaded[any]) bool { return l.Exists() && a.k.Fold().Exists(l.State) }

// errNotAggregate is returned for a stream of no registered aggregate.
var errNotAggregate = errors.New("not the stream of a registered aggregate")

// kindOf is the registered aggregate whose category streamID is in.
func (h *Handler) kindOf(streamID string) (domain.Kind, error) {
	category := eventstore.Category(streamID)
	for _, k := range h.kinds {
		if k.Describe().Category == category {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", streamID, errNotAggregate)
}
