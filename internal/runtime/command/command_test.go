package command_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/product"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newHandler(t *testing.T) *command.Handler {
	t.Helper()
	return command.New(eventstore.New(dbtest.PoolFor(t, dbtest.URL(t), 30), eventstore.Options{}), command.Options{})
}

func rule(err error) string {
	var inv *domain.InvariantError
	if errors.As(err, &inv) {
		return inv.Rule
	}
	return ""
}

// Concurrent registrations of one address (in different spellings): exactly one user gets it.
func TestEmailIsUniqueUnderConcurrentRegistrations(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	const n = 16
	var wins, taken atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			email := "Ada@Example.com"
			if i%2 == 1 {
				email = "ada@example.com"
			}
			_, err := h.RegisterUser(context.Background(), fmt.Sprintf("Ada %d", i), email)
			switch {
			case err == nil:
				wins.Add(1)
			case rule(err) == "email-unique":
				taken.Add(1)
			default:
				t.Errorf("registration %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || taken.Load() != n-1 {
		t.Errorf("%d registrations won and %d were refused as taken, want 1 and %d", wins.Load(), taken.Load(), n-1)
	}
}

func TestEmailIsFreedByDeactivationAndChange(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	a, err := h.RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.RegisterUser(ctx, "Bob", "ada@example.com"); rule(err) != "email-unique" {
		t.Fatalf("second registration: got %v, want email-unique", err)
	}
	// Ada moves to a new address: the old one is free, the new one is hers.
	if _, err := h.ChangeUserEmail(ctx, a.User.ID, "ada@new.example.com", nil); err != nil {
		t.Fatal(err)
	}
	b, err := h.RegisterUser(ctx, "Bob", "ada@example.com")
	if err != nil {
		t.Fatalf("the old address should be free: %v", err)
	}
	if _, err := h.ChangeUserEmail(ctx, b.User.ID, "ADA@new.example.com", nil); rule(err) != "email-unique" {
		t.Fatalf("taking Ada's new address: got %v, want email-unique", err)
	}
	// A case-only change keeps the claim.
	if _, err := h.ChangeUserEmail(ctx, a.User.ID, "Ada@New.example.com", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DeactivateUser(ctx, a.User.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ChangeUserEmail(ctx, b.User.ID, "ada@new.example.com", nil); err != nil {
		t.Fatalf("a deactivated user's address should be free: %v", err)
	}
	if _, err := h.RenameUser(ctx, a.User.ID, "Ada L.", nil); rule(err) != "user-active" {
		t.Errorf("renaming a deactivated user: got %v, want user-active", err)
	}
}

// 50 payments of one order at the same expected version: exactly one succeeds, the others get
// the conflict back (they said which version they saw), none is retried behind their back.
func TestCallerExpectedVersionConflictsGoBackToTheCaller(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	u, err := h.RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	o, err := h.CreateOrder(ctx, u.User.ID, []order.Item{{SKU: "A", Quantity: 2, UnitPrice: 999}})
	if err != nil {
		t.Fatal(err)
	}
	v := o.Order.Version
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := h.PayOrder(ctx, o.Order.ID, 1998, &v)
			var wrong *eventstore.WrongExpectedVersionError
			switch {
			case err == nil:
				wins.Add(1)
			case errors.As(err, &wrong) && wrong.Actual == 2 && wrong.Expected == 1:
				conflicts.Add(1)
			default:
				t.Errorf("pay: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 49 {
		t.Errorf("%d payments won, %d conflicted; want 1 and 49", wins.Load(), conflicts.Load())
	}
	s, err := h.LoadOrder(ctx, o.Order.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 2 || s.Status != order.Paid {
		t.Errorf("order at version %d, %s; want 2, PAID", s.Version, s.Status)
	}
}

// Without an expected version, concurrent commands on one aggregate are retried from a fresh
// load: every rename lands.
func TestCommandsWithoutExpectedVersionAreRetried(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	u, err := h.RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 // within the retry budget on a 2-core machine
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := h.RenameUser(ctx, u.User.ID, fmt.Sprintf("Ada %d", i), nil); err != nil {
				t.Errorf("rename %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	s, err := h.LoadUser(ctx, u.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 1+n {
		t.Errorf("user at version %d, want %d", s.Version, 1+n)
	}
}

// An order is never created for a customer deactivated at the same moment: either the order
// was created first, or it is refused.
func TestCreateOrderRacesDeactivation(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	for i := range 10 {
		u, err := h.RegisterUser(ctx, "Ada", fmt.Sprintf("ada%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var created command.OrderResult
		var createErr error
		wg.Go(func() {
			created, createErr = h.CreateOrder(ctx, u.User.ID, []order.Item{{SKU: "A", Quantity: 1, UnitPrice: 1}})
		})
		wg.Go(func() {
			if _, err := h.DeactivateUser(ctx, u.User.ID, nil); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if createErr != nil {
			if rule(createErr) != "customer-active" {
				t.Errorf("create: %v", createErr)
			}
			continue
		}
		// The order was written first: the customer's stream was at the version the order
		// saw, active, when the order committed.
		s, err := h.LoadUser(ctx, u.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != user.Deactivated || created.Order.CustomerID != u.User.ID {
			t.Errorf("unexpected state %+v / %+v", s, created.Order)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	missing := "0190b6a4-0000-7000-8000-000000000000"
	if _, err := h.PayOrder(ctx, missing, 1, nil); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("pay a missing order: %v", err)
	}
	if _, err := h.RenameUser(ctx, missing, "x", nil); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("rename a missing user: %v", err)
	}
	if _, err := h.CreateOrder(ctx, missing, []order.Item{{SKU: "A", Quantity: 1}}); rule(err) != "customer-exists" {
		t.Errorf("order for a missing customer: %v", err)
	}
	if _, err := command.ParseID("id", "not-a-uuid"); !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("ParseID: %v", err)
	}
	u, err := h.RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	stale := int64(7)
	var wrong *eventstore.WrongExpectedVersionError
	if _, err := h.RenameUser(ctx, u.User.ID, "Ada L.", &stale); !errors.As(err, &wrong) || wrong.Actual != 1 {
		t.Errorf("rename at a stale version: %v", err)
	}
}

// The domain accepts exactly what the store redacts personal fields to.
func TestRedactedValuesAgree(t *testing.T) {
	if domain.Redacted != eventstore.Redacted {
		t.Errorf("domain.Redacted %q, eventstore.Redacted %q", domain.Redacted, eventstore.Redacted)
	}
}

// An aggregate whose first events were archived (strata archive) is not folded from the
// middle of its stream: the load fails, naming the versions that are missing.
func TestLoadingAnAggregateWithArchivedEventsFails(t *testing.T) {
	t.Parallel()
	pool := dbtest.PoolFor(t, dbtest.URL(t), 4)
	h := command.New(eventstore.New(pool, eventstore.Options{}), command.Options{})
	ctx := context.Background()
	u, err := h.RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Ada L.", "Ada Lovelace"} {
		if _, err := h.RenameUser(ctx, u.User.ID, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	// What an archive of the partitions holding versions 1 and 2 leaves, then all three.
	for _, tc := range []struct {
		upTo int
		want string
	}{{2, "versions 1 to 2 are archived"}, {3, "versions 1 to 3 are archived"}} {
		if _, err := pool.Exec(ctx, `DELETE FROM events WHERE stream_id = $1 AND version <= $2`, user.StreamID(u.User.ID), tc.upTo); err != nil {
			t.Fatal(err)
		}
		if _, err := h.LoadUser(ctx, u.User.ID); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loading with versions up to %d archived: %v, want %q", tc.upTo, err, tc.want)
		}
	}
}

// Values claimed in claim streams, before tags, stay held: the claim streams are read with the
// tagged events, in the global order.
func TestValuesClaimedInClaimStreamsStayHeld(t *testing.T) {
	t.Parallel()
	store := eventstore.New(dbtest.PoolFor(t, dbtest.URL(t), 10), eventstore.Options{})
	h := command.New(store, command.Options{})
	ctx := context.Background()

	// A product and a user whose values were claimed the old way.
	products := command.For(h, product.Definition())
	old, err := products.Execute(ctx, command.Call[product.State, product.Command]{Name: "createProduct", ID: "0190b6a4-0000-7000-8000-00000000000a", New: true,
		Command: product.Create{ID: "0190b6a4-0000-7000-8000-00000000000a", SKU: "OLD-1", Name: "Old", Price: 100, Stock: 1}})
	if err != nil {
		t.Fatal(err)
	}
	claim := func(stream, typ, data string) {
		t.Helper()
		if _, err := store.Append(ctx, stream, eventstore.Any(), []eventstore.EventData{{Type: typ, Data: []byte(data)}}); err != nil {
			t.Fatal(err)
		}
	}
	claim(command.ClaimStreamID("productsku", "legacy-1"), command.TypeValueClaimed, `{"holder":"`+old.State.ID+`"}`)
	ada, err := h.RegisterUser(ctx, "Ada", "ada@new.example.com")
	if err != nil {
		t.Fatal(err)
	}
	claim(user.ClaimStreamID("old@example.com"), user.TypeEmailClaimed, `{"userId":"`+ada.User.ID+`"}`)

	if _, err := products.Execute(ctx, command.Call[product.State, product.Command]{Name: "createProduct", ID: "0190b6a4-0000-7000-8000-00000000000b", New: true,
		Command: product.Create{ID: "0190b6a4-0000-7000-8000-00000000000b", SKU: "Legacy-1", Name: "New", Price: 100, Stock: 1}}); rule(err) != "sku-unique" {
		t.Errorf("a SKU claimed in a claim stream: got %v, want sku-unique", err)
	}
	if _, err := h.RegisterUser(ctx, "Bob", "OLD@example.com"); rule(err) != "email-unique" {
		t.Errorf("an address claimed in a claim stream: got %v, want email-unique", err)
	}
	// A release in a claim stream still frees a value.
	claim(command.ClaimStreamID("productsku", "legacy-1"), command.TypeValueReleased, `{"holder":"`+old.State.ID+`"}`)
	if _, err := products.Execute(ctx, command.Call[product.State, product.Command]{Name: "createProduct", ID: "0190b6a4-0000-7000-8000-00000000000b", New: true,
		Command: product.Create{ID: "0190b6a4-0000-7000-8000-00000000000b", SKU: "Legacy-1", Name: "New", Price: 100, Stock: 1}}); err != nil {
		t.Errorf("a SKU released in its claim stream: %v", err)
	}
	if _, err := h.DeactivateUser(ctx, ada.User.ID, nil); err != nil {
		t.Fatal(err)
	}
	// Ada's deactivation releases her address by a tag.
	if _, err := h.RegisterUser(ctx, "Cleo", "ada@new.example.com"); err != nil {
		t.Errorf("an address released by a tag: %v", err)
	}
}
