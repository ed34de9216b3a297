package bench

import (
	"context"
	"testing"

	"github.com/strata-es/strata/internal/eventstore"
)

type countingAppender struct{ n *int }

func (c countingAppender) Append(context.Context, string, eventstore.ExpectedVersion, []eventstore.EventData) (eventstore.AppendResult, error) {
	*c.n++
	return eventstore.AppendResult{}, nil
}

// Appends are spread evenly over the replicas, one after the other.
func TestRoundRobinTakesTurns(t *testing.T) {
	counts := make([]int, 3)
	rr := RoundRobin{countingAppender{&counts[0]}, countingAppender{&counts[1]}, countingAppender{&counts[2]}}
	for range 30 {
		if _, err := rr.Append(context.Background(), "s", eventstore.Any(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range counts {
		if n != 10 {
			t.Errorf("replica %d got %d appends of 30, want 10 each (%v)", i, n, counts)
		}
	}
}
