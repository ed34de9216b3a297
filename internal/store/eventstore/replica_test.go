package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// Covers is false while a transaction older than the position is still open, since that
// transaction's events, if it commits, come before the position; it turns true once it ends.
func TestCoversWaitsForOlderTransactions(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, eventstore.Options{})
	ctx := t.Context()
	older, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = older.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := older.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // takes an id
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "cover-1", eventstore.Any(), []eventstore.EventData{ev("Covered", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.Covers(ctx, res.Position)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("Covers(%s) is true while an older transaction is open", res.Position)
	}
	if err := older.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Other tests share the cluster and its transactions: wait rather than assume.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, err = s.Covers(ctx, res.Position); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Covers(%s) still false 30s after the older transaction ended", res.Position)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
