// Package order is the Order aggregate: an order is created for an active customer, paid in
// full, shipped, or cancelled before it ships. An order's events live in stream order-<id>.
package order

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/user"
)

// Category is the stream category of orders: an order's stream is "order-<id>".
const Category = "order"

// StreamID returns the stream of the order with this id.
func StreamID(id string) string { return Category + "-" + id }

// Status is an order's lifecycle state.
type Status string

// Statuses: PENDING → PAID → SHIPPED, and CANCELLED from PENDING or PAID.
const (
	Pending   Status = "PENDING"
	Paid      Status = "PAID"
	Shipped   Status = "SHIPPED"
	Cancelled Status = "CANCELLED"
)

// Limits on input.
const (
	MaxItems    = 100
	MaxQuantity = 1_000_000
	MaxSKULen   = 64
	MaxTextLen  = 500 // carrier, tracking number, cancellation reason
)

// Item is one line of an order. UnitPrice is in minor units.
type Item struct {
	SKU       string       `json:"sku"`
	Quantity  int64        `json:"quantity"`
	UnitPrice domain.Money `json:"unitPrice"`
}

// Reservation is stock an order took from a product when it was created (product's
// StockReserved), given back when it is cancelled.
type Reservation struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// StateShape is the version of State's shape in snapshots, as user.StateShape. 2: with
// Reservations.
const StateShape = 2

// State is an order as its events leave it. The zero State is an order that does not exist.
type State struct {
	ID             string
	CustomerID     string
	Items          []Item
	Total          domain.Money
	Status         Status
	Carrier        string
	TrackingNumber string
	CancelReason   string
	Reservations   []Reservation `json:",omitempty"`
	Version        int64
}

// Exists reports whether the order has been created.
func (s State) Exists() bool { return s.Version > 0 }

// Events. Type names are stored with every event and must never change.
const (
	TypeCreated   = "OrderCreated"
	TypePaid      = "OrderPaid"
	TypeShipped   = "OrderShipped"
	TypeCancelled = "OrderCancelled"
)

// Event is one of the order's events.
type Event interface{ EventType() string }

// Created is an order's first event.
type Created struct {
	OrderID    string       `json:"orderId"`
	CustomerID string       `json:"customerId"`
	Items      []Item       `json:"items"`
	Total      domain.Money `json:"total"`
	// Reservations are the stock the order took, appended to the products in the same write;
	// none for orders created before products' stock was reserved.
	Reservations []Reservation `json:"reservations,omitempty"`
}

// PaidEvent records a payment of the whole total.
type PaidEvent struct {
	Amount domain.Money `json:"amount"`
}

// ShippedEvent records the shipment.
type ShippedEvent struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"trackingNumber"`
}

// CancelledEvent records a cancellation.
type CancelledEvent struct {
	Reason string `json:"reason"`
}

// EventType implements Event.
func (Created) EventType() string { return TypeCreated }

// SchemaVersion is the version of OrderCreated's shape: 2 since item prices (and the total)
// became integer minor units instead of float numbers of whole units (Upcasters).
func (Created) SchemaVersion() int { return 2 }

// Upcasters bring the order's old payloads to current shapes.
func Upcasters() []domain.Upcaster {
	return []domain.Upcaster{{Type: TypeCreated, From: 1, Up: createdV1}}
}

// createdV1 turns version 1's float prices ({"sku", "quantity", "price": 9.99}) into minor
// units ({"unitPrice": 999}), reading the numbers' decimal text, and recomputes the total the
// same way. Items already in the new shape pass unchanged.
func createdV1(data []byte) ([]byte, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	for old, current := range map[string]string{"order_id": "orderId", "customer_id": "customerId"} {
		if x, ok := v[old]; ok {
			v[current] = x
			delete(v, old)
		}
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(v["items"], &items); err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	var total domain.Money
	for i, it := range items {
		if price, ok := it["price"]; ok {
			m, err := domain.MoneyFromJSONNumber(string(price))
			if err != nil {
				return nil, fmt.Errorf("items[%d].price: %w", i, err)
			}
			it["unitPrice"] = json.RawMessage(strconv.FormatInt(int64(m), 10))
			delete(it, "price")
		}
		var line Item
		b, _ := json.Marshal(it)
		if err := json.Unmarshal(b, &line); err != nil {
			return nil, fmt.Errorf("items[%d]: %w", i, err)
		}
		if line.UnitPrice > 0 && domain.Money(line.Quantity) > domain.MaxMoney/line.UnitPrice {
			return nil, fmt.Errorf("items[%d]: the line is more than %s", i, domain.MaxMoney)
		}
		total += domain.Money(line.Quantity) * line.UnitPrice
	}
	b, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	v["items"] = b
	v["total"] = json.RawMessage(strconv.FormatInt(int64(total), 10))
	return json.Marshal(v)
}

// EventType implements Event.
func (PaidEvent) EventType() string { return TypePaid }

// EventType implements Event.
func (ShippedEvent) EventType() string { return TypeShipped }

// EventType implements Event.
func (CancelledEvent) EventType() string { return TypeCancelled }

// Decode turns a stored event back into an Event.
func Decode(typ string, data []byte) (Event, error) {
	var e Event
	var err error
	switch typ {
	case TypeCreated:
		var v Created
		err, e = json.Unmarshal(data, &v), v
	case TypePaid:
		var v PaidEvent
		err, e = json.Unmarshal(data, &v), v
	case TypeShipped:
		var v ShippedEvent
		err, e = json.Unmarshal(data, &v), v
	case TypeCancelled:
		var v CancelledEvent
		err, e = json.Unmarshal(data, &v), v
	default:
		return nil, fmt.Errorf("order: %w %q", domain.ErrUnknownEvent, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("order: decode %s: %w", typ, err)
	}
	return e, nil
}

// Apply returns the state after e. Apply never fails: events are facts.
func (s State) Apply(e Event) State {
	switch e := e.(type) {
	case Created:
		s.ID, s.CustomerID, s.Total, s.Status = e.OrderID, e.CustomerID, e.Total, Pending
		s.Items = append([]Item(nil), e.Items...)
		s.Reservations = append([]Reservation(nil), e.Reservations...)
	case PaidEvent:
		s.Status = Paid
	case ShippedEvent:
		s.Status, s.Carrier, s.TrackingNumber = Shipped, e.Carrier, e.TrackingNumber
	case CancelledEvent:
		s.Status, s.CancelReason = Cancelled, e.Reason
	}
	s.Version++
	return s
}

// Commands.
type (
	// Command is one of the commands below.
	Command interface{ isCommand() }
	// Create creates an order. Customer is the customer's state, which the command layer loads
	// (and keeps unchanged until the order is written).
	Create struct {
		ID       string
		Customer user.State
		Items    []Item
		// Reservations are the stock the command took for the items whose SKU is a product's.
		Reservations []Reservation
	}
	// Pay pays the order; Amount must equal its total.
	Pay struct{ Amount domain.Money }
	// Ship ships a paid order.
	Ship struct{ Carrier, TrackingNumber string }
	// Cancel cancels an order that has not shipped.
	Cancel struct{ Reason string }
)

func (Create) isCommand() {}
func (Pay) isCommand()    {}
func (Ship) isCommand()   {}
func (Cancel) isCommand() {}

// Decide returns the events that command c produces on state s, or the rule it would break.
func Decide(s State, c Command) ([]Event, error) {
	if _, ok := c.(Create); !ok && !s.Exists() {
		return nil, fmt.Errorf("order: %w", domain.ErrNotFound)
	}
	switch c := c.(type) {
	case Create:
		if s.Exists() {
			return nil, domain.Broken("order-new", "order %s already exists", s.ID)
		}
		if !c.Customer.Exists() {
			return nil, domain.Broken("customer-exists", "there is no customer with this id")
		}
		if c.Customer.Status != user.Active {
			return nil, domain.Broken("customer-active", "customer %s is deactivated", c.Customer.ID)
		}
		total, err := checkItems(c.Items)
		if err != nil {
			return nil, err
		}
		return []Event{Created{OrderID: c.ID, CustomerID: c.Customer.ID, Items: c.Items, Total: total, Reservations: c.Reservations}}, nil
	case Pay:
		if s.Status != Pending {
			return nil, domain.Broken("order-pending", "only a PENDING order can be paid; order %s is %s", s.ID, s.Status)
		}
		if c.Amount != s.Total {
			return nil, domain.Broken("amount-equals-total", "the amount %s is not the order's total %s", c.Amount, s.Total)
		}
		return []Event{PaidEvent(c)}, nil
	case Ship:
		if s.Status != Paid {
			return nil, domain.Broken("order-paid", "only a PAID order can be shipped; order %s is %s", s.ID, s.Status)
		}
		if err := checkText("carrier", c.Carrier); err != nil {
			return nil, err
		}
		if err := checkText("trackingNumber", c.TrackingNumber); err != nil {
			return nil, err
		}
		return []Event{ShippedEvent(c)}, nil
	case Cancel:
		switch s.Status {
		case Shipped:
			return nil, domain.Broken("order-not-shipped", "order %s has shipped and can no longer be cancelled", s.ID)
		case Cancelled:
			return nil, domain.Broken("order-not-cancelled", "order %s is already cancelled", s.ID)
		}
		if err := checkText("reason", c.Reason); err != nil {
			return nil, err
		}
		return []Event{CancelledEvent(c)}, nil
	}
	return nil, fmt.Errorf("order: unknown command %T", c)
}

// checkItems returns the total of items, or the rule they break. Every line and the total are
// kept at most domain.MaxMoney, checked before multiplying, so nothing overflows.
func checkItems(items []Item) (domain.Money, error) {
	if len(items) == 0 {
		return 0, domain.Broken("items-present", "an order needs at least one item")
	}
	if len(items) > MaxItems {
		return 0, domain.Broken("items-present", "an order has at most %d items", MaxItems)
	}
	var total domain.Money
	for i, it := range items {
		switch {
		case strings.TrimSpace(it.SKU) == "" || len(it.SKU) > MaxSKULen || !utf8.ValidString(it.SKU):
			return 0, domain.Broken("sku-valid", "items[%d]: a sku is 1 to %d bytes of UTF-8", i, MaxSKULen)
		case it.Quantity <= 0:
			return 0, domain.Broken("quantity-positive", "items[%d]: quantity %d is not positive", i, it.Quantity)
		case it.Quantity > MaxQuantity:
			return 0, domain.Broken("quantity-positive", "items[%d]: quantity %d is more than %d", i, it.Quantity, MaxQuantity)
		case it.UnitPrice < 0 || it.UnitPrice > domain.MaxMoney:
			return 0, domain.Broken("price-valid", "items[%d]: unit price %s is outside 0 to %s", i, it.UnitPrice, domain.MaxMoney)
		}
		if it.UnitPrice > 0 && domain.Money(it.Quantity) > domain.MaxMoney/it.UnitPrice {
			return 0, domain.Broken("total-bounded", "the order's total is more than %s", domain.MaxMoney)
		}
		line := domain.Money(it.Quantity) * it.UnitPrice // ≤ MaxMoney, checked above
		if total+line > domain.MaxMoney {
			return 0, domain.Broken("total-bounded", "the order's total is more than %s", domain.MaxMoney)
		}
		total += line
	}
	return total, nil
}

func checkText(field, s string) error {
	if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > MaxTextLen || !utf8.ValidString(s) {
		return domain.Broken(field+"-valid", "%s must be 1 to %d characters", field, MaxTextLen)
	}
	return nil
}

// WithVersion implements domain.Versioned.
func (s State) WithVersion(v int64) State {
	s.Version = v
	return s
}

// Definition declares the Order aggregate to the runtime.
func Definition() domain.Aggregate[State, Event, Command] {
	return domain.Aggregate[State, Event, Command]{
		Name: "Order", Category: Category, Shape: StateShape,
		Decode: Decode, Evolve: State.Apply, Decide: Decide, Fields: Fields, Upcasters: Upcasters(),
		Events: []Event{Created{}, PaidEvent{}, ShippedEvent{}, CancelledEvent{}},
		Exists: func(s State) bool { return s.CustomerID != "" },
		ReadModel: &domain.ReadModel{
			Table: "orders",
			Columns: []domain.Column{
				{Name: "id", Field: "ID"}, {Name: "customer_id", Field: "CustomerID"}, {Name: "status", Field: "Status"},
				{Name: "items", Field: "Items"}, {Name: "total", Field: "Total"}, {Name: "carrier", Field: "Carrier"},
				{Name: "tracking_number", Field: "TrackingNumber"}, {Name: "cancel_reason", Field: "CancelReason"},
				{Name: "version", Field: "Version"},
			},
			Filters: []domain.Filter{{Name: "status", Column: "status"}, {Name: "customerId", Column: "customer_id"}},
		},
	}
}

// Fields are an order's fields as clients see them (money as decimal strings).
func Fields(s State) []domain.Field {
	items := make([]map[string]any, len(s.Items))
	for i, it := range s.Items {
		items[i] = map[string]any{"sku": it.SKU, "quantity": it.Quantity, "unitPrice": it.UnitPrice.String()}
	}
	f := []domain.Field{{Name: "status", Value: string(s.Status)}, {Name: "customerId", Value: s.CustomerID}, {Name: "items", Value: items}, {Name: "total", Value: s.Total.String()}}
	if s.Carrier != "" || s.TrackingNumber != "" {
		f = append(f, domain.Field{Name: "carrier", Value: s.Carrier}, domain.Field{Name: "trackingNumber", Value: s.TrackingNumber})
	}
	if s.CancelReason != "" {
		f = append(f, domain.Field{Name: "cancelReason", Value: s.CancelReason})
	}
	return f
}
