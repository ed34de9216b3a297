package order_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
)

// fold applies events, in order, to the zero State.
func fold(events ...order.Event) order.State {
	var s order.State
	for _, e := range events {
		s = s.Apply(e)
	}
	return s
}

// A case reads: given these events, when this command, then these events — or this rule
// broken, or ErrNotFound.
type decideCase struct {
	name     string
	given    []order.Event
	when     order.Command
	then     []order.Event
	rule     string // the InvariantError's Rule, when the command is refused
	notFound bool   // the command is refused with ErrNotFound
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := order.Decide(fold(tc.given...), tc.when)
			switch {
			case tc.notFound:
				if !errors.Is(err, domain.ErrNotFound) {
					t.Fatalf("Decide(%#v) = %#v, %v; want ErrNotFound", tc.when, got, err)
				}
				if errors.Is(err, domain.ErrInvariant) {
					t.Errorf("Decide(%#v): not-found error %v also matches ErrInvariant", tc.when, err)
				}
			case tc.rule != "":
				var ie *domain.InvariantError
				if !errors.As(err, &ie) {
					t.Fatalf("Decide(%#v) = %#v, %v; want rule %s broken", tc.when, got, err, tc.rule)
				}
				if ie.Rule != tc.rule {
					t.Fatalf("Decide(%#v) broke rule %q (%v), want %q", tc.when, ie.Rule, err, tc.rule)
				}
				if !errors.Is(err, domain.ErrInvariant) {
					t.Errorf("errors.Is(%v, ErrInvariant) = false", err)
				}
			default:
				if err != nil {
					t.Fatalf("Decide(%#v): %v, want %#v", tc.when, err, tc.then)
				}
				if !reflect.DeepEqual(got, tc.then) {
					t.Fatalf("Decide(%#v) = %#v, want %#v", tc.when, got, tc.then)
				}
			}
			if err != nil && got != nil {
				t.Errorf("Decide(%#v) returned events %#v with its error %v", tc.when, got, err)
			}
		})
	}
}

var (
	customer = user.State{}.Apply(user.Registered{UserID: "c1", Name: "Ada", Email: "ada@example.com"})
	gone     = customer.Apply(user.DeactivatedEvent{Email: "ada@example.com"})

	items   = []order.Item{{SKU: "SKU-1", Quantity: 2, UnitPrice: 999}, {SKU: "SKU-2", Quantity: 1, UnitPrice: 1}}
	created = order.Created{OrderID: "o1", CustomerID: "c1", Items: items, Total: 1999}

	paid      = order.PaidEvent{Amount: 1999}
	shipped   = order.ShippedEvent{Carrier: "DHL", TrackingNumber: "JD0001"}
	cancelled = order.CancelledEvent{Reason: "changed my mind"}
)

func create(items ...order.Item) order.Create {
	return order.Create{ID: "o1", Customer: customer, Items: items}
}

func item(sku string, quantity int64, unitPrice domain.Money) order.Item {
	return order.Item{SKU: sku, Quantity: quantity, UnitPrice: unitPrice}
}

func manyItems(n int) []order.Item {
	out := make([]order.Item, n)
	for i := range out {
		out[i] = item(fmt.Sprintf("SKU-%d", i), 1, 100)
	}
	return out
}

func TestCreate(t *testing.T) {
	t.Parallel()
	if customer.Status != user.Active || gone.Status != user.Deactivated {
		t.Fatalf("fixtures: customer %+v, gone %+v", customer, gone)
	}
	hundred := manyItems(order.MaxItems)
	max := domain.MaxMoney
	runDecide(t, []decideCase{
		{name: "creates", when: create(items...), then: []order.Event{created}},
		{name: "100 items", when: create(hundred...),
			then: []order.Event{order.Created{OrderID: "o1", CustomerID: "c1", Items: hundred, Total: 100 * 100}}},
		{name: "free item", when: create(item("FREE", 3, 0)),
			then: []order.Event{order.Created{OrderID: "o1", CustomerID: "c1", Items: []order.Item{item("FREE", 3, 0)}, Total: 0}}},
		{name: "largest quantity", when: create(item("S", order.MaxQuantity, 1)),
			then: []order.Event{order.Created{OrderID: "o1", CustomerID: "c1",
				Items: []order.Item{item("S", order.MaxQuantity, 1)}, Total: order.MaxQuantity}}},
		{name: "total exactly MaxMoney", when: create(item("A", 1, max-1), item("B", 1, 1)),
			then: []order.Event{order.Created{OrderID: "o1", CustomerID: "c1",
				Items: []order.Item{item("A", 1, max-1), item("B", 1, 1)}, Total: max}}},
		{name: "line exactly MaxMoney", when: create(item("A", 1_000_000, max/1_000_000)),
			then: []order.Event{order.Created{OrderID: "o1", CustomerID: "c1",
				Items: []order.Item{item("A", 1_000_000, max/1_000_000)}, Total: max}}},

		{name: "created twice", given: []order.Event{created}, when: create(items...), rule: "order-new"},
		{name: "no customer", when: order.Create{ID: "o1", Items: items}, rule: "customer-exists"},
		{name: "deactivated customer", when: order.Create{ID: "o1", Customer: gone, Items: items}, rule: "customer-active"},
		{name: "no items", when: create(), rule: "items-present"},
		{name: "empty item slice", when: order.Create{ID: "o1", Customer: customer, Items: []order.Item{}}, rule: "items-present"},
		{name: "101 items", when: create(manyItems(order.MaxItems + 1)...), rule: "items-present"},
		{name: "quantity 0", when: create(item("S", 0, 100)), rule: "quantity-positive"},
		{name: "negative quantity", when: create(item("S", -1, 100)), rule: "quantity-positive"},
		{name: "quantity over 1e6", when: create(item("S", order.MaxQuantity+1, 1)), rule: "quantity-positive"},
		{name: "bad quantity on a later line", when: create(item("A", 1, 1), item("B", 0, 1)), rule: "quantity-positive"},
		{name: "empty sku", when: create(item("", 1, 100)), rule: "sku-valid"},
		{name: "blank sku", when: create(item(" \t", 1, 100)), rule: "sku-valid"},
		{name: "sku of 65 bytes", when: create(item(strings.Repeat("x", order.MaxSKULen+1), 1, 100)), rule: "sku-valid"},
		{name: "sku not UTF-8", when: create(item("SKU\xff", 1, 100)), rule: "sku-valid"},
		{name: "negative price", when: create(item("S", 1, -1)), rule: "price-valid"},
		{name: "price over MaxMoney", when: create(item("S", 1, max+1)), rule: "price-valid"},
		{name: "line over MaxMoney", when: create(item("S", 1_000_000, max)), rule: "total-bounded"},
		{name: "line that would overflow int64", when: create(item("S", 1_000_000, 10_000_000_000_000)), rule: "total-bounded"},
		{name: "line one over MaxMoney", when: create(item("S", 2, max/2+1)), rule: "total-bounded"},
		{name: "sum over MaxMoney", when: create(item("A", 1, max), item("B", 1, 1)), rule: "total-bounded"},
	})
}

func TestCreateSKUOf64Bytes(t *testing.T) {
	t.Parallel()
	sku := strings.Repeat("x", order.MaxSKULen)
	events, err := order.Decide(order.State{}, create(item(sku, 1, 1)))
	if err != nil || len(events) != 1 {
		t.Fatalf("Decide with a %d-byte sku = %#v, %v; want one Created", len(sku), events, err)
	}
}

func TestPay(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "pays", given: []order.Event{created}, when: order.Pay{Amount: 1999},
			then: []order.Event{order.PaidEvent{Amount: 1999}}},
		{name: "amount too small", given: []order.Event{created}, when: order.Pay{Amount: 1998}, rule: "amount-equals-total"},
		{name: "amount too large", given: []order.Event{created}, when: order.Pay{Amount: 2000}, rule: "amount-equals-total"},
		{name: "amount zero", given: []order.Event{created}, when: order.Pay{}, rule: "amount-equals-total"},
		{name: "already paid", given: []order.Event{created, paid}, when: order.Pay{Amount: 1999}, rule: "order-pending"},
		{name: "shipped", given: []order.Event{created, paid, shipped}, when: order.Pay{Amount: 1999}, rule: "order-pending"},
		{name: "cancelled", given: []order.Event{created, cancelled}, when: order.Pay{Amount: 1999}, rule: "order-pending"},
		{name: "no such order", when: order.Pay{Amount: 0}, notFound: true},
	})
}

func TestShip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", order.MaxTextLen) // 500 characters, 1000 bytes
	runDecide(t, []decideCase{
		{name: "ships", given: []order.Event{created, paid},
			when: order.Ship{Carrier: "DHL", TrackingNumber: "JD0001"}, then: []order.Event{shipped}},
		{name: "500-character carrier", given: []order.Event{created, paid},
			when: order.Ship{Carrier: long, TrackingNumber: "1"},
			then: []order.Event{order.ShippedEvent{Carrier: long, TrackingNumber: "1"}}},
		{name: "pending", given: []order.Event{created},
			when: order.Ship{Carrier: "DHL", TrackingNumber: "JD0001"}, rule: "order-paid"},
		{name: "shipped", given: []order.Event{created, paid, shipped},
			when: order.Ship{Carrier: "DHL", TrackingNumber: "JD0001"}, rule: "order-paid"},
		{name: "cancelled", given: []order.Event{created, paid, cancelled},
			when: order.Ship{Carrier: "DHL", TrackingNumber: "JD0001"}, rule: "order-paid"},
		{name: "empty carrier", given: []order.Event{created, paid},
			when: order.Ship{TrackingNumber: "JD0001"}, rule: "carrier-valid"},
		{name: "blank carrier", given: []order.Event{created, paid},
			when: order.Ship{Carrier: "  ", TrackingNumber: "JD0001"}, rule: "carrier-valid"},
		{name: "501-character carrier", given: []order.Event{created, paid},
			when: order.Ship{Carrier: long + "x", TrackingNumber: "JD0001"}, rule: "carrier-valid"},
		{name: "empty tracking number", given: []order.Event{created, paid},
			when: order.Ship{Carrier: "DHL"}, rule: "trackingNumber-valid"},
		{name: "tracking number not UTF-8", given: []order.Event{created, paid},
			when: order.Ship{Carrier: "DHL", TrackingNumber: "\xff"}, rule: "trackingNumber-valid"},
		{name: "no such order", when: order.Ship{Carrier: "DHL", TrackingNumber: "JD0001"}, notFound: true},
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "pending", given: []order.Event{created},
			when: order.Cancel{Reason: "changed my mind"}, then: []order.Event{cancelled}},
		{name: "paid", given: []order.Event{created, paid},
			when: order.Cancel{Reason: "out of stock"}, then: []order.Event{order.CancelledEvent{Reason: "out of stock"}}},
		{name: "shipped", given: []order.Event{created, paid, shipped},
			when: order.Cancel{Reason: "too late"}, rule: "order-not-shipped"},
		{name: "cancelled", given: []order.Event{created, cancelled},
			when: order.Cancel{Reason: "again"}, rule: "order-not-cancelled"},
		{name: "empty reason", given: []order.Event{created}, when: order.Cancel{}, rule: "reason-valid"},
		{name: "blank reason", given: []order.Event{created, paid}, when: order.Cancel{Reason: "\n"}, rule: "reason-valid"},
		{name: "no such order", when: order.Cancel{Reason: "why not"}, notFound: true},
	})
}

func TestApply(t *testing.T) {
	t.Parallel()
	var s order.State
	if s.Exists() {
		t.Fatal("the zero State exists")
	}
	s = s.Apply(created)
	want := order.State{ID: "o1", CustomerID: "c1", Items: items, Total: 1999, Status: order.Pending, Version: 1}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("after Created: %+v, want %+v", s, want)
	}
	if !s.Exists() {
		t.Fatal("after Created: Exists() = false")
	}
	s = s.Apply(paid)
	want.Status, want.Version = order.Paid, 2
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("after Paid: %+v, want %+v", s, want)
	}
	s = s.Apply(shipped)
	want.Status, want.Carrier, want.TrackingNumber, want.Version = order.Shipped, "DHL", "JD0001", 3
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("after Shipped: %+v, want %+v", s, want)
	}

	c := fold(created, paid, cancelled)
	wantC := order.State{ID: "o1", CustomerID: "c1", Items: items, Total: 1999, Status: order.Cancelled,
		CancelReason: "changed my mind", Version: 3}
	if !reflect.DeepEqual(c, wantC) {
		t.Errorf("after Created, Paid, Cancelled: %+v, want %+v", c, wantC)
	}
}

func TestApplyCopiesItems(t *testing.T) {
	t.Parallel()
	evItems := []order.Item{item("A", 1, 10), item("B", 2, 20)}
	s := order.State{}.Apply(order.Created{OrderID: "o1", CustomerID: "c1", Items: evItems, Total: 50})
	evItems[0].SKU, evItems[0].Quantity = "CHANGED", 99
	if want := []order.Item{item("A", 1, 10), item("B", 2, 20)}; !reflect.DeepEqual(s.Items, want) {
		t.Errorf("State.Items after the event's slice changed = %+v, want %+v", s.Items, want)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range []order.Event{created, paid, shipped, cancelled} {
		t.Run(e.EventType(), func(t *testing.T) {
			t.Parallel()
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got, err := order.Decode(e.EventType(), data)
			if err != nil {
				t.Fatalf("Decode(%s, %s): %v", e.EventType(), data, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("Decode(%s, %s) = %#v, want %#v", e.EventType(), data, got, e)
			}
		})
	}
}

// Money travels as a JSON integer of minor units, under stable field names.
func TestEventJSON(t *testing.T) {
	t.Parallel()
	data, err := json.Marshal(order.Created{OrderID: "o1", CustomerID: "c1", Items: []order.Item{item("A", 2, 999)}, Total: 1998})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"orderId":"o1","customerId":"c1","items":[{"sku":"A","quantity":2,"unitPrice":999}],"total":1998}`
	if string(data) != want {
		t.Errorf("Created marshals as %s, want %s", data, want)
	}
	for _, tc := range []struct {
		e    order.Event
		want string
	}{
		{order.Created{}, "OrderCreated"},
		{order.PaidEvent{}, "OrderPaid"},
		{order.ShippedEvent{}, "OrderShipped"},
		{order.CancelledEvent{}, "OrderCancelled"},
	} {
		if got := tc.e.EventType(); got != tc.want {
			t.Errorf("%T.EventType() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, typ, data string
	}{
		{"unknown type", "OrderExploded", `{}`},
		{"user type", "UserRegistered", `{}`},
		{"malformed created", order.TypeCreated, `{"items":`},
		{"malformed paid", order.TypePaid, `{"amount":"19.98"}`},
		{"malformed shipped", order.TypeShipped, `[]`},
		{"malformed cancelled", order.TypeCancelled, ``},
	} {
		if got, err := order.Decode(tc.typ, []byte(tc.data)); err == nil || got != nil {
			t.Errorf("%s: Decode(%q, %q) = %#v, %v; want nil and an error", tc.name, tc.typ, tc.data, got, err)
		}
	}
}

// Decide is pure: deciding does not change the state it was given.
func TestDecideDoesNotChangeState(t *testing.T) {
	t.Parallel()
	s := fold(created, paid)
	before := fold(created, paid)
	if _, err := order.Decide(s, order.Ship{Carrier: "DHL", TrackingNumber: "1"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, before) {
		t.Errorf("Decide changed its state to %+v", s)
	}
	if got := order.StreamID("o1"); got != "order-o1" {
		t.Errorf("StreamID(o1) = %q, want order-o1", got)
	}
}
