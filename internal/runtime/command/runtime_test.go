package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// A tally is an aggregate declared here and nowhere else: a labelled count, with its owner's
// name as personal data. It proves the runtime gives an aggregate that nothing in Strata knows
// of its commands, history, time travel, snapshots, upcasting, shredding and lifecycle rules
// from its declaration alone.
type tally struct {
	Label  string `json:"label"`
	Count  int64  `json:"count"`
	Owner  string `json:"owner"`
	Closed bool   `json:"closed"`
}

type tallyEvent interface{ EventType() string }

type (
	tallyOpened struct {
		Label string `json:"label"`
		Owner string `json:"owner"`
	}
	// tallyAdded is at schema version 2: version 1 called n "amount".
	tallyAdded  struct{ N int64 }
	tallyClosed struct{}
)

func (tallyOpened) EventType() string { return "TallyOpened" }
func (tallyAdded) EventType() string  { return "TallyAdded" }
func (tallyAdded) SchemaVersion() int { return 2 }
func (tallyClosed) EventType() string { return "TallyClosed" }

type (
	tallyCommand any
	openTally    struct{ Label, Owner string }
	addToTally   struct{ N int64 }
)

func decideTally(s tally, c tallyCommand) ([]tallyEvent, error) {
	switch c := c.(type) {
	case openTally:
		if s.Label != "" {
			return nil, domain.Broken("tally-new", "the tally is open already")
		}
		return []tallyEvent{tallyOpened(c)}, nil
	case addToTally:
		switch {
		case s.Label == "":
			return nil, fmt.Errorf("tally: %w", domain.ErrNotFound)
		case c.N <= 0:
			return nil, domain.Broken("n-positive", "add at least 1")
		}
		return []tallyEvent{tallyAdded(c)}, nil
	}
	return nil, fmt.Errorf("unknown command %T", c)
}

func evolveTally(s tally, e tallyEvent) tally {
	switch e := e.(type) {
	case tallyOpened:
		s.Label, s.Owner = e.Label, e.Owner
	case tallyAdded:
		s.Count += e.N
	case tallyClosed:
		s.Closed = true
	}
	return s
}

func decodeTally(typ string, data []byte) (tallyEvent, error) {
	var e tallyEvent
	var err error
	switch typ {
	case "TallyOpened":
		var v tallyOpened
		err, e = json.Unmarshal(data, &v), v
	case "TallyAdded":
		var v tallyAdded
		err, e = json.Unmarshal(data, &v), v
	case "TallyClosed":
		e = tallyClosed{}
	default:
		return nil, fmt.Errorf("tally: %w %q", domain.ErrUnknownEvent, typ)
	}
	return e, err
}

func tallyDefinition() domain.Aggregate[tally, tallyEvent, tallyCommand] {
	return domain.Aggregate[tally, tallyEvent, tallyCommand]{
		Name: "Tally", Category: "tally", Shape: 1,
		Decode: decodeTally, Evolve: evolveTally, Decide: decideTally,
		Personal: map[string][]string{"TallyOpened": {"owner"}},
		Upcasters: []domain.Upcaster{{Type: "TallyAdded", From: 1, Up: func(data []byte) ([]byte, error) {
			var v struct{ Amount int64 }
			if err := json.Unmarshal(data, &v); err != nil {
				return nil, err
			}
			return json.Marshal(tallyAdded{N: v.Amount})
		}}},
	}
}

func TestARuntimeAggregateDeclaredInATest(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 20)
	kinds := []domain.Kind{tallyDefinition()}
	store := eventstore.New(pool, eventstore.Options{Upcasters: command.Upcasters(kinds), Personal: command.PersonalFields(kinds)})
	h := command.New(store, command.Options{Aggregates: kinds, SnapshotEvery: map[string]int{"tally": 3}})
	tallies := command.For(h, tallyDefinition())
	ctx := context.Background()
	id := uuid.NewString()
	stream := "tally-" + id
	type call = command.Call[tally, tallyCommand]

	opened, err := tallies.Execute(ctx, call{Name: "openTally", ID: id, New: true, Command: openTally{Label: "visitors", Owner: "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	if opened.Version != 1 || opened.State.Label != "visitors" || opened.Position.IsZero() || len(opened.Events) != 1 || opened.Events[0].Type != "TallyOpened" || opened.Events[0].StreamID != stream {
		t.Fatalf("open: %+v", opened)
	}
	if _, err := tallies.Execute(ctx, call{Name: "openTally", ID: id, New: true, Command: openTally{Label: "again"}}); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("opening an existing tally as new: %v", err)
	}

	t.Run("dry run writes nothing", func(t *testing.T) {
		dry, err := command.For(h.DryRun(), tallyDefinition()).Execute(ctx, call{Name: "addToTally", ID: id, Command: addToTally{N: 5}})
		if err != nil || !dry.DryRun || dry.Version != 2 || dry.State.Count != 5 || len(dry.Events) != 1 || dry.Events[0].Version != 2 || !dry.Position.IsZero() {
			t.Errorf("dry run: %+v, %v", dry, err)
		}
		if l, err := tallies.Load(ctx, id); err != nil || l.Version != 1 {
			t.Errorf("after a dry run: %+v, %v", l, err)
		}
	})

	for _, n := range []int64{2, 3} { // versions 2 and 3
		if _, err := tallies.Execute(ctx, call{Name: "addToTally", ID: id, Command: addToTally{N: n}}); err != nil {
			t.Fatal(err)
		}
	}
	// A load that replayed 3 events leaves a snapshot.
	if _, err := tallies.Load(ctx, id); err != nil {
		t.Fatal(err)
	}
	if snap, ok, err := store.LatestSnapshot(ctx, stream, 1, 100); err != nil || !ok || snap.Version != 3 {
		t.Errorf("a snapshot every 3 events: %+v %v %v", snap, ok, err)
	}

	t.Run("rules, not found and expected versions", func(t *testing.T) {
		if _, err := tallies.Execute(ctx, call{Name: "addToTally", ID: id, Command: addToTally{N: 0}}); rule(err) != "n-positive" {
			t.Errorf("adding 0: %v", err)
		}
		missing := uuid.NewString()
		if _, err := tallies.Execute(ctx, call{Name: "addToTally", ID: missing, Command: addToTally{N: 1}}); !errors.Is(err, domain.ErrNotFound) || !strings.Contains(err.Error(), "tally "+missing) {
			t.Errorf("a tally that does not exist: %v", err)
		}
		stale := int64(1)
		var wrong *eventstore.WrongExpectedVersionError
		if _, err := tallies.Execute(ctx, call{Name: "addToTally", ID: id, Expected: &stale, Command: addToTally{N: 1}}); !errors.As(err, &wrong) || wrong.Actual != 3 {
			t.Errorf("a stale expected version: %v", err)
		}
	})

	// Writers without an expected version all land, retried on conflicts.
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := tallies.Execute(ctx, call{Name: "addToTally", ID: id, Command: addToTally{N: 1}}); err != nil {
				t.Errorf("concurrent add: %v", err)
			}
		})
	}
	wg.Wait()
	now, err := tallies.Load(ctx, id)
	if err != nil || now.Version != 9 || now.State.Count != 11 {
		t.Fatalf("after the concurrent adds: %+v, %v", now, err)
	}

	t.Run("history, fields and time travel", func(t *testing.T) {
		steps, err := tallies.History(ctx, id)
		if err != nil || len(steps) != 9 {
			t.Fatalf("history: %d steps, %v", len(steps), err)
		}
		if steps[2].State.Count != 5 || steps[2].Event.Version != 3 {
			t.Errorf("state after version 3: %+v", steps[2])
		}
		fields := tallies.Fields(command.Loaded[tally]{State: steps[2].State, Version: 3})
		var names []string
		for _, f := range fields {
			names = append(names, f.Name)
		}
		if strings.Join(names, ",") != "label,count,owner,closed" || string(fields[1].Value.(json.RawMessage)) != "5" {
			t.Errorf("fields of a state without Fields: %+v", fields)
		}
		if f := tallies.Fields(command.Loaded[tally]{}); f != nil {
			t.Errorf("a tally that does not exist has fields: %+v", f)
		}
		at2, err := tallies.Until(ctx, id, command.Until{Version: 2})
		if err != nil || at2.Version != 2 || at2.State.Count != 2 {
			t.Errorf("at version 2: %+v, %v", at2, err)
		}
		before3, err := tallies.Until(ctx, id, command.Until{Before: steps[2].Event.Position})
		if err != nil || before3.Version != 2 || before3.State.Count != 2 {
			t.Errorf("before version 3's position: %+v, %v", before3, err)
		}
		l, at, err := tallies.At(ctx, id)
		if err != nil || l.Version != 9 || at != steps[8].Event.Position {
			t.Errorf("at: %+v %v %v", l, at, err)
		}

		// The same, with the aggregate known only as a domain.Kind.
		kind := command.ForKind(h, tallyDefinition())
		erased, err := kind.History(ctx, id)
		if err != nil || len(erased) != 9 || erased[2].State.(tally) != steps[2].State || erased[2].Event.Version != 3 {
			t.Fatalf("history of the Kind: %d steps, %v", len(erased), err)
		}
		kat2, err := kind.Until(ctx, id, command.Until{Version: 2})
		if err != nil || kat2.Version != 2 || kat2.State.(tally) != at2.State || !kind.Exists(kat2) {
			t.Errorf("the Kind at version 2: %+v, %v", kat2, err)
		}
		if got, want := fmt.Sprint(kind.Fields(kat2)), fmt.Sprint(tallies.Fields(at2)); got != want {
			t.Errorf("the Kind's fields at version 2 are %s, want %s", got, want)
		}
		kbefore3, err := kind.Until(ctx, id, command.Until{Before: steps[2].Event.Position})
		if err != nil || kbefore3.Version != 2 || kbefore3.State.(tally) != before3.State {
			t.Errorf("the Kind before version 3's position: %+v, %v", kbefore3, err)
		}
		none, err := kind.Until(ctx, uuid.NewString(), command.Until{})
		if err != nil || none.Exists() || kind.Exists(none) || kind.Fields(none) != nil {
			t.Errorf("a tally that does not exist, as a Kind: %+v, %v", none, err)
		}
	})

	t.Run("old payloads are upcast", func(t *testing.T) {
		if _, err := store.Append(ctx, stream, eventstore.Exactly(9), []eventstore.EventData{{Type: "TallyAdded", SchemaVersion: 1, Data: json.RawMessage(`{"amount": 4}`)}}); err != nil {
			t.Fatal(err)
		}
		l, err := tallies.Load(ctx, id)
		if err != nil || l.Version != 10 || l.State.Count != 15 {
			t.Errorf("after a version 1 payload: %+v, %v", l, err)
		}
	})

	t.Run("personal fields are sealed and shredded", func(t *testing.T) {
		var stored string
		if err := pool.QueryRow(ctx, `SELECT data::text FROM events WHERE stream_id = $1 AND version = 1`, stream).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, "Ada") {
			t.Errorf("the owner is stored in the clear: %s", stored)
		}
		// Forgetting deletes the key and the stream's snapshots, which hold the owner in the clear.
		if err := store.Forget(ctx, id, stream); err != nil {
			t.Fatal(err)
		}
		steps, err := tallies.History(ctx, id)
		if err != nil || len(steps) == 0 || steps[len(steps)-1].State.Owner != domain.Redacted {
			t.Errorf("after forgetting: %v, %v", steps, err)
		}
	})

	t.Run("lifecycle rules of a registered aggregate", func(t *testing.T) {
		if _, err := h.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{MaxCount: 2}); !errors.Is(err, eventstore.ErrInvalidInput) || !strings.Contains(err.Error(), "Tally") {
			t.Errorf("maxCount on a tally's stream: %v", err)
		}
		if _, err := h.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{TruncateBefore: 5}); err != nil {
			t.Fatal(err)
		}
		if snap, ok, err := store.LatestSnapshot(ctx, stream, 1, 4); err != nil || !ok || snap.Version != 4 {
			t.Errorf("truncating before 5 leaves a snapshot at 4: %+v %v %v", snap, ok, err)
		}
		l, err := command.For(command.New(store, command.Options{Aggregates: kinds}), tallyDefinition()).Load(ctx, id)
		if err != nil || l.Version != 10 || l.State.Count != 15 {
			t.Errorf("a truncated tally loads from its snapshot: %+v, %v", l, err)
		}
	})
}
