package bench

import (
	"context"
	"slices"
	"testing"

	"github.com/strata-es/strata/internal/store/eventstore"
)

type countingAppender struct{ n *int }

func (c countingAppender) Append(context.Context, string, eventstore.ExpectedVersion, []eventstore.EventData) (eventstore.AppendResult, error) {
	*c.n++
	return eventstore.AppendResult{}, nil
}

// Appends are spread evenly over the replicas, one after the other.
func TestRoundRobinTakesTurns(t *testing.T) {
	counts := make([]int, 3)
	rr := NewRoundRobin(countingAppender{&counts[0]}, countingAppender{&counts[1]}, countingAppender{&counts[2]})
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

// turnAppender notes its index in the order appends reach it.
type turnAppender struct {
	i     int
	turns *[]int
}

func (a turnAppender) Append(context.Context, string, eventstore.ExpectedVersion, []eventstore.EventData) (eventstore.AppendResult, error) {
	*a.turns = append(*a.turns, a.i)
	return eventstore.AppendResult{}, nil
}

// Two RoundRobins used one after the other each take their own turns from their first
// appender: neither moves the other's turn on (a turn shared between them would send every
// append of each to one of its two replicas).
func TestRoundRobinsTakeTurnsIndependently(t *testing.T) {
	var aTurns, bTurns []int
	a := NewRoundRobin(turnAppender{0, &aTurns}, turnAppender{1, &aTurns})
	b := NewRoundRobin(turnAppender{0, &bTurns}, turnAppender{1, &bTurns})
	for range 4 {
		for _, rr := range []*RoundRobin{a, b} {
			if _, err := rr.Append(context.Background(), "s", eventstore.Any(), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []int{0, 1, 0, 1}
	if !slices.Equal(aTurns, want) || !slices.Equal(bTurns, want) {
		t.Errorf("the first RoundRobin's appends went to %v, the second's to %v; want %v each", aTurns, bTurns, want)
	}
}
