package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/store/eventstore"
)

func TestAppendMultiCommitsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := context.Background()
	mustAppend(t, s, "claim-b", eventstore.NoStream(), ev("Claimed", `{}`))

	res, err := s.AppendMulti(ctx, []eventstore.StreamAppend{
		{StreamID: "user-1", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Registered", `{"n":1}`), ev("Renamed", `{"n":2}`)}},
		{StreamID: "claim-a", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Claimed", `{}`)}},
		{StreamID: "claim-b", Expected: eventstore.Exactly(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].StreamID != "user-1" || res[0].NextExpectedVersion != 2 || len(res[0].Events) != 2 ||
		res[1].StreamID != "claim-a" || res[1].NextExpectedVersion != 1 ||
		res[2].StreamID != "claim-b" || res[2].NextExpectedVersion != 1 || len(res[2].Events) != 0 {
		t.Fatalf("results: %+v", res)
	}
	if res[0].Position.Compare(res[0].Events[0].Position) <= 0 {
		t.Errorf("position of the last event should follow the first's")
	}

	// A conflict in any part, or a failed check, writes nothing to any stream.
	before, _ := counts(t, pool)
	for name, parts := range map[string][]eventstore.StreamAppend{
		"conflict": {
			{StreamID: "user-2", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Registered", `{}`)}},
			{StreamID: "claim-a", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Claimed", `{}`)}},
		},
		"check": {
			{StreamID: "user-3", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Registered", `{}`)}},
			{StreamID: "claim-b", Expected: eventstore.Exactly(7)},
		},
	} {
		_, err := s.AppendMulti(ctx, parts)
		var wrong *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wrong) || wrong.Actual != 1 {
			t.Errorf("%s: got %v, want a WrongExpectedVersionError at version 1", name, err)
		}
	}
	if after, _ := counts(t, pool); after != before {
		t.Errorf("failed multi-stream appends wrote %d events", after-before)
	}
}

func TestAppendMultiRefusesBadInput(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{MaxEventsPerAppend: 2})
	id := uuid.New()
	for name, parts := range map[string][]eventstore.StreamAppend{
		"none":          nil,
		"same stream":   {{StreamID: "a-1", Events: []eventstore.EventData{ev("X", `{}`)}}, {StreamID: "a-1", Events: []eventstore.EventData{ev("X", `{}`)}}},
		"only checks":   {{StreamID: "a-1", Expected: eventstore.NoStream()}},
		"check any":     {{StreamID: "a-1", Events: []eventstore.EventData{ev("X", `{}`)}}, {StreamID: "a-2"}},
		"same event id": {{StreamID: "a-1", Events: []eventstore.EventData{evID(id, "X", `{}`)}}, {StreamID: "a-2", Events: []eventstore.EventData{evID(id, "X", `{}`)}}},
		"bad data":      {{StreamID: "a-1", Events: []eventstore.EventData{ev("X", `[]`)}}},
		"over limit":    {{StreamID: "a-1", Events: []eventstore.EventData{ev("X", `{}`), ev("X", `{}`)}}, {StreamID: "a-2", Events: []eventstore.EventData{ev("X", `{}`)}}},
	} {
		if _, err := s.AppendMulti(context.Background(), parts); !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("%s: got %v, want ErrInvalidInput", name, err)
		}
	}
	if events, streams := counts(t, pool); events != 0 || streams != 0 {
		t.Errorf("refused appends wrote %d events, %d streams", events, streams)
	}
}

func TestAppendMultiIsIdempotent(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	parts := []eventstore.StreamAppend{
		{StreamID: "user-1", Expected: eventstore.NoStream(), Events: []eventstore.EventData{evID(uuid.New(), "Registered", `{}`)}},
		{StreamID: "claim-1", Expected: eventstore.NoStream(), Events: []eventstore.EventData{evID(uuid.New(), "Claimed", `{}`)}},
	}
	first, err := s.AppendMulti(context.Background(), parts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AppendMulti(context.Background(), parts)
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	for i := range parts {
		if !again[i].Repeated || again[i].Position != first[i].Position {
			t.Errorf("part %d: repeat gave %+v, first %+v", i, again[i], first[i])
		}
	}
	if events, _ := counts(t, pool); events != 2 {
		t.Errorf("%d events stored, want 2", events)
	}
}

// Concurrent claims of one stream: exactly one multi-stream append wins, and the losers wrote
// nothing anywhere.
func TestAppendMultiConcurrentClaimsOneWins(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]eventstore.Options{"a transaction each": {}, "group commit": {GroupCommit: true}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			concurrentClaimsOneWins(t, opts)
		})
	}
}

func concurrentClaimsOneWins(t *testing.T, opts eventstore.Options) {
	s, pool := newStore(t, opts)
	const n = 12
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range n {
		wg.Go(func() {
			_, err := s.AppendMulti(context.Background(), []eventstore.StreamAppend{
				{StreamID: "user-" + uuid.NewString(), Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Registered", `{}`)}},
				{StreamID: "claim-x", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("Claimed", `{}`)}},
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of %d concurrent claims won, want 1", wins, n)
	}
	if events, streams := counts(t, pool); events != 2 || streams != 2 {
		t.Errorf("%d events in %d streams, want 2 in 2", events, streams)
	}
}
