package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	appends []appendCall
	read    []int
}

type appendCall struct {
	events int
	d      time.Duration
	err    error
}

func (r *recorder) Appended(events int, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appends = append(r.appends, appendCall{events, d, err})
}

func (r *recorder) EventsRead(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read = append(r.read, n)
}

// take returns what r was told since the last take.
func (r *recorder) take() ([]appendCall, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, n := r.appends, r.read
	r.appends, r.read = nil, nil
	return a, n
}

// Every append call is reported once, with what it wrote and its error, whatever the outcome.
func TestObserverSeesEveryAppend(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	s, _ := newStore(t, eventstore.Options{Observer: rec})
	ctx := context.Background()
	two := []eventstore.EventData{evID(uuid.New(), "Opened", `{}`), evID(uuid.New(), "Noted", `{"n":1}`)}

	type outcome struct {
		events int
		is     error // nil: no error
	}
	for _, c := range []struct {
		name string
		call func() error
		want outcome
	}{
		{"written", func() error {
			_, err := s.Append(ctx, "obs-1", eventstore.NoStream(), two)
			return err
		}, outcome{2, nil}},
		{"conflict", func() error {
			_, err := s.Append(ctx, "obs-1", eventstore.NoStream(), []eventstore.EventData{ev("Noted", `{}`)})
			return err
		}, outcome{0, eventstore.ErrWrongExpectedVersion}},
		{"invalid", func() error {
			_, err := s.Append(ctx, "obs-1", eventstore.Any(), nil)
			return err
		}, outcome{0, eventstore.ErrInvalidInput}},
		{"repeated writes nothing", func() error {
			res, err := s.Append(ctx, "obs-1", eventstore.NoStream(), two)
			if err == nil && !res.Repeated {
				t.Error("the repeat was not recognised as one; the case proves nothing")
			}
			return err
		}, outcome{0, nil}},
		{"multi written", func() error {
			_, err := s.AppendMulti(ctx, []eventstore.StreamAppend{
				{StreamID: "obs-2", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("A", `{}`)}},
				{StreamID: "obs-3", Expected: eventstore.Any(), Events: []eventstore.EventData{ev("B", `{}`), ev("C", `{}`)}},
				{StreamID: "obs-1", Expected: eventstore.Exactly(2)}, // a check: writes nothing
			})
			return err
		}, outcome{3, nil}},
		{"multi conflict", func() error {
			_, err := s.AppendMulti(ctx, []eventstore.StreamAppend{
				{StreamID: "obs-2", Expected: eventstore.NoStream(), Events: []eventstore.EventData{ev("A", `{}`)}},
			})
			return err
		}, outcome{0, eventstore.ErrWrongExpectedVersion}},
	} {
		err := c.call()
		if c.want.is == nil && err != nil || c.want.is != nil && !errors.Is(err, c.want.is) {
			t.Fatalf("%s: err = %v, want %v", c.name, err, c.want.is)
		}
		appends, _ := rec.take()
		if len(appends) != 1 {
			t.Fatalf("%s: told of %d appends, want 1", c.name, len(appends))
		}
		got := appends[0]
		if got.events != c.want.events || !errors.Is(got.err, err) || got.d <= 0 {
			t.Errorf("%s: told %+v, want %d events, err %v and a duration", c.name, got, c.want.events, err)
		}
	}
}

// Reads report how many events they returned.
func TestObserverSeesEveryRead(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	s, _ := newStore(t, eventstore.Options{Observer: rec})
	ctx := context.Background()
	res := mustAppend(t, s, "obsread-1", eventstore.NoStream(), ev("A", `{}`), ev("B", `{}`), ev("C", `{}`))
	rec.take()

	slice, err := s.ReadStream(ctx, "obsread-1", eventstore.ReadStreamOptions{Max: 2})
	if err != nil || len(slice.Events) != 2 {
		t.Fatalf("read stream: %d events, %v", len(slice.Events), err)
	}
	if _, err := s.ReadStream(ctx, "obsread-none", eventstore.ReadStreamOptions{Max: 2}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read a missing stream: %v", err)
	}
	if appends, read := rec.take(); len(appends) != 0 || len(read) != 1 || read[0] != 2 {
		t.Errorf("after ReadStream: appends %v, reads %v; want reads [2]", appends, read)
	}
	waitVisible(t, s, res.Position)
	rec.take() // waitVisible reads too
	all, err := s.ReadAll(ctx, eventstore.ReadAllOptions{Max: 100, Category: "obsread"})
	if err != nil || len(all) != 3 {
		t.Fatalf("read all: %d events, %v", len(all), err)
	}
	if _, err := s.ReadAll(ctx, eventstore.ReadAllOptions{Max: 0}); !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Fatalf("read all refused: %v", err)
	}
	appends, read := rec.take()
	if len(appends) != 0 || len(read) != 1 || read[0] != 3 {
		t.Errorf("after ReadAll: appends %v, reads %v; want reads [3]", appends, read)
	}
}
