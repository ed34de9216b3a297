package projection

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/eventstore"
)

type named struct{ name, category string }

func (n named) Name() string     { return n.name }
func (n named) Category() string { return n.category }
func (named) Apply(context.Context, pgx.Tx, string, eventstore.RecordedEvent) error {
	return nil
}

// WakeFor wakes the projectors of the categories named, and every one for nil: a projector of
// another category has nothing new to read.
func TestWakeForWakesOnlyTheCategoriesNamed(t *testing.T) {
	t.Parallel()
	r := NewRunner(nil, nil, []Projector{named{"orders", "order"}, named{"order_stats", "order"}, named{"users", "user"}}, Options{}, slog.New(slog.DiscardHandler))
	woken := func() map[string]bool { return drainWakes(r) }
	r.WakeFor([]string{"order", "cart"})
	if got := woken(); !got["orders"] || !got["order_stats"] || got["users"] {
		t.Errorf("WakeFor(order, cart) woke %v, want orders and order_stats only", got)
	}
	r.WakeFor(nil)
	if got := woken(); len(got) != 3 {
		t.Errorf("WakeFor(nil) woke %v, want all three", got)
	}
	r.WakeFor([]string{"cart"})
	if got := woken(); len(got) != 0 {
		t.Errorf("WakeFor(cart) woke %v, want none", got)
	}
}

// A wait for one projection wakes that projector alone; one for a name the runner does not
// run wakes them all.
func TestWakeOneWakesTheProjectionWaitedFor(t *testing.T) {
	t.Parallel()
	r := NewRunner(nil, nil, []Projector{named{"orders", "order"}, named{"users", "user"}}, Options{}, slog.New(slog.DiscardHandler))
	woken := func() map[string]bool { return drainWakes(r) }
	r.wakeOne("users")
	if got := woken(); !got["users"] || got["orders"] {
		t.Errorf("wakeOne(users) woke %v, want users only", got)
	}
	r.wakeOne("users_rebuild")
	if got := woken(); len(got) != 2 {
		t.Errorf("wakeOne(users_rebuild) woke %v, want both", got)
	}
}

// drainWakes takes every pending wake of r's projectors and says whose they were.
func drainWakes(r *Runner) map[string]bool {
	got := map[string]bool{}
	for name, ch := range r.wake {
		select {
		case <-ch:
			got[name] = true
		default:
		}
	}
	return got
}
