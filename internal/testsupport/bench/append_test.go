package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// callCounter is an in-memory Appender that counts the appends it is asked for, safely across
// writers; every conflictEvery-th of them (0: none) answers with a version conflict.
type callCounter struct {
	calls         atomic.Int64
	conflictEvery int64
}

func (c *callCounter) Append(_ context.Context, streamID string, _ eventstore.ExpectedVersion, _ []eventstore.EventData) (eventstore.AppendResult, error) {
	n := c.calls.Add(1)
	time.Sleep(100 * time.Microsecond) // long enough for the writers to overlap
	if c.conflictEvery > 0 && n%c.conflictEvery == 0 {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{StreamID: streamID, Expected: 0, Actual: 1}
	}
	return eventstore.AppendResult{StreamID: streamID, NextExpectedVersion: 1}, nil
}

// With Count set, the writers together attempt exactly Count appends, however they interleave,
// and the duration (a nanosecond here) is not what ends the run.
func TestAppendCountIsExact(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		writers, count, hot  int
		conflictEvery        int64
		wantAppends, wantCon int64
	}{
		{"one writer", 1, 40, 0, 0, 40, 0},
		{"writers sharing the count", 7, 101, 0, 0, 101, 0},
		{"conflicts count as attempts", 4, 60, 2, 3, 40, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &callCounter{conflictEvery: tc.conflictEvery}
			res, err := Append(t.Context(), store, AppendOptions{Writers: tc.writers, Batch: 2, Duration: time.Nanosecond, Count: tc.count, Hot: tc.hot})
			if err != nil {
				t.Fatal(err)
			}
			if got := store.calls.Load(); got != int64(tc.count) {
				t.Errorf("%d appends attempted, want exactly %d", got, tc.count)
			}
			if res.Appends != tc.wantAppends || res.Conflicts != tc.wantCon || res.Errors != 0 {
				t.Errorf("appends %d, conflicts %d, errors %d; want %d, %d, 0", res.Appends, res.Conflicts, res.Errors, tc.wantAppends, tc.wantCon)
			}
			if res.Events != res.Appends*2 {
				t.Errorf("events = %d, want appends × batch = %d", res.Events, res.Appends*2)
			}
		})
	}
}

// Count must not be negative; with Count set, Duration need not be.
func TestAppendOptionsValidateCount(t *testing.T) {
	if err := (AppendOptions{Writers: 1, Batch: 1, Duration: time.Second, Count: -1}).Validate(); err == nil {
		t.Error("Count -1 passed validation")
	}
	if err := (AppendOptions{Writers: 1, Batch: 1, Count: 5}).Validate(); err != nil {
		t.Errorf("Count 5 without a duration: %v", err)
	}
	if err := (AppendOptions{Writers: 1, Batch: 1}).Validate(); err == nil {
		t.Error("neither Count nor Duration passed validation")
	}
}
