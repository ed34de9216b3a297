package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// Event is what every aggregate's events are: a value that names its stored type. Type names
// are stored with every event and never change.
type Event interface{ EventType() string }

// Aggregate declares one aggregate: everything that is particular to it, and nothing about
// storage. S is its state, E its events (the package's own event interface), C its commands.
// The command runtime (internal/runtime/command) gives every declared aggregate its loads with
// snapshots, commands with retries, dry runs and expected versions, history with changes, state
// at a version or a time, and live follows; the registry lists the declarations
// (docs/aggregates.md).
//
// The zero S is the aggregate before its first event. The runtime counts versions itself (a
// state needs no version field); a state that keeps one implements Versioned, and the runtime
// sets it after every event, including the events of types Decode does not know.
type Aggregate[S any, E Event, C any] struct {
	// Name is the aggregate's name for people and messages: "Order".
	Name string
	// Category is the stream category: an aggregate's stream is "<Category>-<id>". It has no
	// '-' in it.
	Category string
	// Shape is the version of S's shape in snapshots: change it when S's fields change, and
	// snapshots of the old shape are ignored. Snapshots are JSON of S.
	Shape int
	// Decode turns a stored event into an E. For a type it does not know it returns an error
	// wrapping ErrUnknownEvent: such events are ignored (they still count for the version).
	Decode func(typ string, data []byte) (E, error)
	// Evolve returns the state after an event. It never fails and never validates: events are
	// facts.
	Evolve func(S, E) S
	// Decide returns the events a command produces on a state, or the rule it would break
	// (Broken), or an error wrapping ErrNotFound. It never changes the state.
	Decide func(S, C) ([]E, error)
	// Fields is the state as clients see it, in the order they see it: history's changes
	// compare two states field by field. The state of an aggregate that does not exist yet has
	// no fields.
	Fields func(S) []Field
	// Upcasters bring old payloads of its events to current shapes when they are read.
	Upcasters []Upcaster
	// Personal names, per event type, the top-level fields that hold personal data; their
	// subject is the aggregate. Empty: the aggregate holds none.
	Personal map[string][]string
	// Also are other stream categories the aggregate's commands write (the User's email
	// claims): like its own, appendEvents refuses them.
	Also []string
	// Events are one value of each of its event types. appendEvents refuses events of these
	// types in any stream, so that nobody writes one around the aggregate's rules.
	Events []E
	// Tags are the categories of tags its commands write besides its unique values' ("email"
	// for "email:<hash>"): appendEvents refuses events with a tag "<category>:…" of these or
	// of its Unique categories, so that nobody can block a command that reads them.
	Tags []string
	// Exists says whether a state is of an aggregate that exists; nil means any state after
	// an event. The read model keeps no row for a state that does not (an order stream whose
	// first event is not OrderCreated).
	Exists func(S) bool
	// Unique are values that at most one aggregate of the kind holds at a time (a product's
	// SKU). The runtime keeps a claim stream per value and checks and moves it in the same
	// write as the aggregate's events, so two commands cannot both take a value.
	Unique []Unique[S]
	// ReadModel is the aggregate's list: a table the runtime keeps from its events and
	// queries. Nil: the aggregate has none (it is still loaded, replayed and followed).
	ReadModel *ReadModel
}

// Unique declares a value that at most one aggregate holds at a time.
type Unique[S any] struct {
	// Rule is the rule a command breaks by taking a value another aggregate holds:
	// "sku-unique".
	Rule string
	// Name is the value's name in messages: "SKU".
	Name string
	// Category is the category of the value's claim streams ("<Category>-<hash of the key>").
	// Like the aggregate's own, appendEvents refuses it.
	Category string
	// Key is the value a state holds, normalised so that two values that must not coexist
	// have the same key (lower case, say); "" holds nothing.
	Key func(S) string
}

// ReadModel declares an aggregate's read model: a table with one row per aggregate, kept by a
// checkpointed projector that folds the aggregate's events with its own Evolve, and read by its
// list and by-id queries. Its SQL is derived from the columns; its migration creates the table
// (docs/aggregates.md shows one).
//
// Besides the declared columns the table has the runtime's: id uuid PRIMARY KEY (the aggregate's
// id, from its stream), version bigint (its stream's version), position text (of the last event
// applied), created_at and updated_at timestamptz, and applied bigint (events applied).
type ReadModel struct {
	// Table is the table's name; it is also the projection's name ("orders").
	Table string
	// Columns are the state's fields the table keeps. A row is written from the state's JSON
	// and read back into it, so the declared columns must hold everything a read needs. "id"
	// and "version" may be declared too, to read them back into the state's fields.
	Columns []Column
	// Filters are the ways its list can be narrowed.
	Filters []Filter
}

// Column is one column of a read model: its name and the field of the state's JSON it holds.
type Column struct {
	Name  string
	Field string
}

// Filter narrows a read model's list by one column.
type Filter struct {
	// Name is the filter's name (an argument of the list query: "customerId").
	Name string
	// Column is the column it compares.
	Column string
	// Match is how: the column equals the value, or contains it ignoring case.
	Match Match
}

// Match is how a filter compares its column with the value it is given.
type Match int

const (
	// Equals keeps the rows whose column is the value.
	Equals Match = iota
	// Contains keeps the rows whose column contains the value, ignoring case.
	Contains
)

// Field is one field of a state as clients see it: a name and a value that encodes as JSON.
type Field struct {
	Name  string
	Value any
}

// Versioned is a state that keeps its stream's version; the runtime sets it after every event.
type Versioned[S any] interface {
	WithVersion(v int64) S
}

// Stream returns the stream of the aggregate with this id.
func (a Aggregate[S, E, C]) Stream(id string) string { return a.Category + "-" + id }

// Kind is a declared aggregate with its types erased: what the parts of Strata that serve every
// aggregate alike (the registry, stream lifecycle, personal data, upcasting, read models) need
// to know of it. Every Aggregate is one.
type Kind interface {
	// Describe says what the aggregate is: its name, category and snapshot shape, its
	// upcasters and personal fields.
	Describe() Description
	// Fold is its replay with the state as an any (the aggregate's S).
	Fold() Fold
}

// Description is what a Kind declares of itself.
type Description struct {
	Name      string
	Category  string
	Shape     int
	Upcasters []Upcaster
	Personal  map[string][]string
	// Also are the other categories it writes: its declared Also and its unique values'
	// claim categories.
	Also      []string
	ReadModel *ReadModel
	// Types are the stored types of its events, and Tags the categories of the tags its
	// commands write ("<category>:…"): appendEvents refuses both.
	Types []string
	Tags  []string
}

// Fold replays an aggregate whose state's type the caller does not know.
type Fold struct {
	// Zero is the state before the first event.
	Zero any
	// Apply folds a stored event (already upcast) at version into state: the state after it,
	// and whether the aggregate knew its type (an unknown type changes only the version).
	Apply func(state any, typ string, data []byte, version int64) (any, bool, error)
	// Unmarshal reads a snapshot's state.
	Unmarshal func(data []byte) (any, error)
	// Fields is the state as clients see it.
	Fields func(state any) []Field
	// Exists says whether a state is of an aggregate that exists (Aggregate.Exists).
	Exists func(state any) bool
}

// Describe implements Kind.
func (a Aggregate[S, E, C]) Describe() Description {
	also := append([]string(nil), a.Also...)
	for _, u := range a.Unique {
		also = append(also, u.Category)
	}
	types := make([]string, len(a.Events))
	for i, e := range a.Events {
		types[i] = e.EventType()
	}
	tags := append([]string(nil), a.Tags...)
	for _, u := range a.Unique {
		tags = append(tags, u.Category)
	}
	return Description{Name: a.Name, Category: a.Category, Shape: a.Shape, Upcasters: a.Upcasters, Personal: a.Personal, Also: also, ReadModel: a.ReadModel,
		Types: types, Tags: tags}
}

// Fold implements Kind.
func (a Aggregate[S, E, C]) Fold() Fold {
	var zero S
	return Fold{
		Zero: zero,
		Apply: func(state any, typ string, data []byte, version int64) (any, bool, error) {
			s, known, err := a.Apply(state.(S), typ, data, version)
			return s, known, err
		},
		Unmarshal: func(data []byte) (any, error) {
			var s S
			err := json.Unmarshal(data, &s)
			return s, err
		},
		Fields: func(state any) []Field { return a.FieldsOf(state.(S)) },
		Exists: func(state any) bool { return a.Exists == nil || a.Exists(state.(S)) },
	}
}

// Apply folds a stored event (already upcast) at version into s: the state after it, and
// whether Decode knew its type. An unknown type changes nothing but the version; a payload that
// does not decode is an error.
func (a Aggregate[S, E, C]) Apply(s S, typ string, data []byte, version int64) (S, bool, error) {
	ev, err := a.Decode(typ, data)
	switch {
	case err == nil:
		return a.Step(s, ev, version), true, nil
	case errors.Is(err, ErrUnknownEvent):
		err = nil
	}
	return a.withVersion(s, version), false, err
}

// Step is s after e, the event at version: Evolve, and the version kept in a Versioned state.
func (a Aggregate[S, E, C]) Step(s S, e E, version int64) S {
	return a.withVersion(a.Evolve(s, e), version)
}

func (a Aggregate[S, E, C]) withVersion(s S, version int64) S {
	if v, ok := any(s).(Versioned[S]); ok {
		s = v.WithVersion(version)
	}
	return s
}

// FieldsOf is s as clients see it: Fields, or every field of s's JSON, in its order.
func (a Aggregate[S, E, C]) FieldsOf(s S) []Field {
	if a.Fields != nil {
		return a.Fields(s)
	}
	return jsonFields(s)
}

// jsonFields are the top-level fields of v's JSON object, in the order they are written.
func jsonFields(v any) []Field {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []Field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out
		}
		out = append(out, Field{Name: name, Value: raw})
	}
	return out
}

// DecodeJSON returns a Decode for events stored as their JSON: one zero value of each event
// type, whose EventType names the type it decodes. Name is the aggregate's, for messages.
func DecodeJSON[E Event](name string, events ...E) func(typ string, data []byte) (E, error) {
	types := make(map[string]reflect.Type, len(events))
	for _, e := range events {
		types[e.EventType()] = reflect.TypeOf(e)
	}
	return func(typ string, data []byte) (E, error) {
		var zero E
		t, ok := types[typ]
		if !ok {
			return zero, fmt.Errorf("%s: %w %q", name, ErrUnknownEvent, typ)
		}
		v := reflect.New(t)
		if err := json.Unmarshal(data, v.Interface()); err != nil {
			return zero, fmt.Errorf("%s: decode %s: %w", name, typ, err)
		}
		return v.Elem().Interface().(E), nil
	}
}
