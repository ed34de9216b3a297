package projection_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// Rebuilding the read models after a truncated user's and order's early events were scavenged
// gives the rows the live projectors had: each starts from the snapshot the truncation left.
// A deleted user's row goes, live and in the rebuild, and nothing is counted as skipped.
func TestReadModelsAfterTruncationScavengeAndDeletion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{})
	ctx := context.Background()
	ada, err := f.cmd.RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Ada B", "Ada C"} {
		if _, err := f.cmd.RenameUser(ctx, ada.User.ID, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	o, err := f.cmd.CreateOrder(ctx, ada.User.ID, []order.Item{{SKU: "A", Quantity: 2, UnitPrice: 250}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cmd.PayOrder(ctx, o.Order.ID, o.Order.Total, nil); err != nil {
		t.Fatal(err)
	}
	bo, err := f.cmd.RegisterUser(ctx, "Bo", "bo@example.com")
	if err != nil {
		t.Fatal(err)
	}
	del, err := f.store.DeleteStream(ctx, user.StreamID(bo.User.ID), eventstore.Any())
	if err != nil {
		t.Fatal(err)
	}
	for stream, before := range map[string]int64{user.StreamID(ada.User.ID): 3, order.StreamID(o.Order.ID): 2} {
		if _, err := f.cmd.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{TruncateBefore: before}); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t)
	waitAll(t, f, del.Position)
	tables := func() string {
		t.Helper()
		var out string
		if err := f.pool.QueryRow(ctx, `SELECT coalesce((SELECT string_agg(concat_ws(' ', id, name, email, status, version), ', ' ORDER BY id) FROM users), '')
	|| ' / ' || coalesce((SELECT string_agg(concat_ws(' ', id, customer_id, status, total, version), ', ' ORDER BY id) FROM orders), '')`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	live := tables()
	want := ada.User.ID + " Ada C ada@example.com ACTIVE 3 / " + o.Order.ID + " " + ada.User.ID + " PAID 500 2"
	if live != want {
		t.Fatalf("live read models: %s\nwant: %s", live, want)
	}
	n, err := eventstore.NewScavenger(f.store, eventstore.ScavengeOptions{
		Applied: func(ctx context.Context, category string) (eventstore.Position, error) {
			return projection.Applied(ctx, f.pool, category)
		},
	}, slog.New(slog.DiscardHandler)).Once(ctx)
	if err != nil || n != 4 { // Ada's versions 1-2, the order's version 1, Bo's registration
		t.Fatalf("scavenge: %d deleted, %v; want 4", n, err)
	}
	// order_stats too: the truncated order is left out of the rebuilt statistics, without an
	// event counted as skipped.
	for _, name := range []string{"users", "orders", "order_stats"} {
		if err := f.runner.Rebuild(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := tables(); got != live {
		t.Errorf("rebuilt read models: %s\nwant: %s", got, live)
	}
	infos, err := f.runner.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Skipped != 0 {
			t.Errorf("%s skipped %d events", in.Name, in.Skipped)
		}
	}
	var counted int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM order_stats`).Scan(&counted); err != nil || counted != 0 {
		t.Errorf("rebuilt order_stats has %d rows (%v); want none: the order's creation was scavenged", counted, err)
	}
}
