package command_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// A user's stream truncated before version 4: loads, commands, history and time travel start
// from the snapshot the truncation took, also once the scavenger has deleted the events before
// it, and with or without regular snapshots.
func TestTruncatedAggregateLoadsFromItsSnapshot(t *testing.T) {
	t.Parallel()
	for _, every := range []int{0, 2} {
		t.Run(fmt.Sprintf("snapshot-every=%d", every), func(t *testing.T) {
			t.Parallel()
			pool := dbtest.PoolFor(t, dbtest.URL(t), 10)
			store := eventstore.New(pool, eventstore.Options{})
			h := command.New(store, command.Options{SnapshotEvery: map[string]int{user.Category: every}})
			ctx := context.Background()
			reg, err := h.RegisterUser(ctx, "Ada", "ada@example.com")
			if err != nil {
				t.Fatal(err)
			}
			id := reg.User.ID
			for _, name := range []string{"Ada B", "Ada C", "Ada D", "Ada E"} { // versions 2..5
				if _, err := h.RenameUser(ctx, id, name, nil); err != nil {
					t.Fatal(err)
				}
			}
			stream := user.StreamID(id)
			if _, err := h.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{MaxCount: 2}); !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Errorf("maxCount on a user's stream: %v", err)
			}
			if _, err := h.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{TruncateBefore: 7}); !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Errorf("truncateBefore beyond the next version: %v", err)
			}
			if _, err := h.SetStreamMetadata(ctx, user.ClaimStreamID("ada@example.com"), eventstore.StreamMetadata{TruncateBefore: 2}); !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Errorf("truncating an email claim stream: %v", err)
			}
			if _, err := h.SetStreamMetadata(ctx, command.ClaimStreamID("productsku", "lamp-1"), eventstore.StreamMetadata{MaxCount: 1}); !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Errorf("capping a SKU claim stream: %v", err)
			}
			if _, err := h.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{TruncateBefore: 4}); err != nil {
				t.Fatal(err)
			}

			check := func(when string) {
				t.Helper()
				s, err := h.LoadUser(ctx, id)
				if err != nil || s.Name != "Ada E" || s.Email != "ada@example.com" || s.Version != 5 || s.Status != user.Active {
					t.Errorf("%s: load = %+v, %v", when, s, err)
				}
				steps, err := h.UserHistory(ctx, id)
				if err != nil || len(steps) != 2 || steps[0].Event.Version != 4 || steps[0].State.Name != "Ada D" || steps[0].State.Email != "ada@example.com" {
					t.Errorf("%s: history = %+v, %v", when, steps, err)
				}
				at3, err := h.UserUntil(ctx, id, command.Until{Version: 3})
				if err != nil || at3.Name != "Ada C" || at3.Version != 3 {
					t.Errorf("%s: at version 3 (the snapshot) = %+v, %v", when, at3, err)
				}
				_, err = h.UserUntil(ctx, id, command.Until{Version: 1})
				var tr *eventstore.TruncatedError
				if !errors.As(err, &tr) || tr.First != 4 {
					t.Errorf("%s: at version 1 = %v, want truncated before 4", when, err)
				}
				_, err = h.UserUntil(ctx, id, command.Until{Before: reg.Position})
				if !errors.As(err, &tr) {
					t.Errorf("%s: as of a time before the truncation point = %v, want truncated", when, err)
				}
			}
			check("before the scavenge")
			n, err := eventstore.NewScavenger(store, eventstore.ScavengeOptions{}, slog.New(slog.DiscardHandler)).Once(ctx)
			if err != nil || n != 3 {
				t.Fatalf("scavenge: %d deleted, %v; want 3", n, err)
			}
			check("after the scavenge")

			// Commands go on from the snapshot, and their invariants still see the state.
			res, err := h.RenameUser(ctx, id, "Ada F", ptr(int64(5)))
			if err != nil || res.User.Version != 6 || res.User.Name != "Ada F" {
				t.Errorf("rename after truncating: %+v, %v", res.User, err)
			}
			if _, err := h.DeactivateUser(ctx, id, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := h.RenameUser(ctx, id, "Ada G", nil); rule(err) != "user-active" {
				t.Errorf("rename of the deactivated user: %v, want user-active", err)
			}

			// Without the snapshot a truncated stream cannot be loaded, and says so.
			if _, err := pool.Exec(ctx, `DELETE FROM snapshots`); err != nil {
				t.Fatal(err)
			}
			if _, err := h.LoadUser(ctx, id); !errors.Is(err, eventstore.ErrTruncated) {
				t.Errorf("load without the snapshot: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Commands on a deleted aggregate are refused with the deletion, not with an empty state.
func TestCommandsOnADeletedAggregateAreRefused(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	reg, err := h.RegisterUser(ctx, "Bo", "bo@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store().DeleteStream(ctx, user.StreamID(reg.User.ID), eventstore.Exactly(1)); err != nil {
		t.Fatal(err)
	}
	_, err = h.RenameUser(ctx, reg.User.ID, "Bob", nil)
	var del *eventstore.StreamDeletedError
	if !errors.As(err, &del) || del.Version != 2 {
		t.Errorf("rename of a deleted user: %v", err)
	}
	if _, err := h.LoadUser(ctx, reg.User.ID); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("load of a deleted user: %v", err)
	}
}
