package command

import (
	"context"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/product"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// Orders is the runtime of the Order aggregate on h.
func (h *Handler) Orders() Aggregate[order.State, order.Event, order.Command] {
	return For(h, order.Definition())
}

// OrderResult is an order after a command, the position of its last event (zero in a dry run),
// and the events the command appended (or would append).
type OrderResult struct {
	Order    order.State
	Position eventstore.Position
	Events   []Planned
	DryRun   bool
}

func orderResult(r Result[order.State], err error) (OrderResult, error) {
	return OrderResult{Order: r.State, Position: r.Position, Events: r.Events, DryRun: r.DryRun}, err
}

// LoadOrder replays an order's events. An order that does not exist is the zero State.
func (h *Handler) LoadOrder(ctx context.Context, id string) (order.State, error) {
	return h.OrderUntil(ctx, id, Until{})
}

// OrderUntil replays an order's events up to u.
func (h *Handler) OrderUntil(ctx context.Context, id string, u Until) (order.State, error) {
	l, err := h.Orders().Until(ctx, id, u)
	return l.State, err
}

// reserveAttempts is how often an order's command is tried: orders that reserve from one
// product contend for its stream, and each conflict is decided again from a fresh load.
const reserveAttempts = 50

// CreateOrder creates an order with a fresh id for an active customer. The customer's stream
// is checked at the version the customer was read at when the order is written, so an order
// cannot be created for a customer deactivated at the same moment.
//
// Items whose SKU is a product's reserve its stock: the products are found by their SKUs' tags
// in the log (not the read model, which trails it), and the order's write appends StockReserved
// to each, at the version it was loaded at, under a condition on the read of the SKUs: it is
// refused (out-of-stock) when a product has fewer units than the order asks for, and
// (product-active) when the product is discontinued. An item whose SKU is no product's is taken
// as before. However many orders race, a product's stock never goes below 0.
func (h *Handler) CreateOrder(ctx context.Context, customerID string, items []order.Item) (OrderResult, error) {
	id, err := NewID()
	if err != nil {
		return OrderResult{}, err
	}
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "createOrder", ID: id, New: true, MaxAttempts: reserveAttempts,
		Prepare: func(ctx context.Context, _ Loaded[order.State], w *Write) (order.Command, error) {
			customer, err := h.LoadUser(ctx, customerID)
			if err != nil {
				return nil, err
			}
			w.Check(user.StreamID(customerID), customer.Version)
			reservations, err := h.reserve(ctx, id, items, w)
			if err != nil {
				return nil, err
			}
			return order.Create{ID: id, Customer: customer, Items: items, Reservations: reservations}, nil
		}}))
}

// reserve adds to w the stock that the items of order id take from products, and returns it.
func (h *Handler) reserve(ctx context.Context, id string, items []order.Item, w *Write) ([]order.Reservation, error) {
	want := map[string]int64{} // by SKU key
	var keys []string
	for _, it := range items {
		if it.Quantity < 1 { // the order's own rules refuse it
			continue
		}
		key := product.SKUKey(it.SKU)
		if _, seen := want[key]; !seen {
			keys = append(keys, key)
		}
		want[key] += it.Quantity
	}
	if len(keys) == 0 {
		return nil, nil
	}
	values := make([]value, len(keys))
	for i, key := range keys {
		values[i] = value{category: product.SKUCategory, key: key, claims: ClaimStreamID(product.SKUCategory, key), holder: claimHolder, owner: product.Category}
	}
	read, err := h.readHolders(ctx, values)
	if err != nil {
		return nil, err
	}
	// The condition holds the read true: a product that takes one of the SKUs meanwhile makes
	// the order decided again.
	w.Require(read.condition())
	products := For(h, product.Definition())
	var out []order.Reservation
	for _, key := range keys {
		pid := read.holderOf(product.SKUCategory, key)
		if pid == "" {
			continue
		}
		p, err := products.Load(ctx, pid)
		if err != nil {
			return nil, err
		}
		switch {
		case p.State.Status != product.StatusActive:
			return nil, domain.Broken("product-active", "product %s (SKU %s) is discontinued", pid, p.State.SKU)
		case p.State.Stock < want[key]:
			return nil, domain.Broken("out-of-stock", "product %s (SKU %s) has %d in stock; the order asks for %d", pid, p.State.SKU, p.State.Stock, want[key])
		}
		data, err := eventData("createOrder", []product.Event{product.StockReserved{OrderID: id, Quantity: want[key]}})
		if err != nil {
			return nil, err
		}
		w.Also(products.def.Stream(pid), p.Version, data)
		out = append(out, order.Reservation{ProductID: pid, Quantity: want[key]})
	}
	return out, nil
}

// PayOrder pays an order in full.
func (h *Handler) PayOrder(ctx context.Context, id string, amount domain.Money, expected *int64) (OrderResult, error) {
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "payOrder", ID: id, Expected: expected, Command: order.Pay{Amount: amount}}))
}

// ShipOrder ships a paid order.
func (h *Handler) ShipOrder(ctx context.Context, id, carrier, trackingNumber string, expected *int64) (OrderResult, error) {
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "shipOrder", ID: id, Expected: expected, Command: order.Ship{Carrier: carrier, TrackingNumber: trackingNumber}}))
}

// CancelOrder cancels an order that has not shipped, and gives the stock it reserved back to
// its products (StockReleased, accepted by a discontinued product too), in the same write.
func (h *Handler) CancelOrder(ctx context.Context, id, reason string, expected *int64) (OrderResult, error) {
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "cancelOrder", ID: id, Expected: expected, MaxAttempts: reserveAttempts,
		Command: order.Cancel{Reason: reason},
		Then: func(ctx context.Context, l Loaded[order.State], _ []domain.Event, w *Write) error {
			products := For(h, product.Definition())
			for _, r := range l.State.Reservations {
				p, err := products.Load(ctx, r.ProductID)
				if err != nil {
					return err
				}
				data, err := eventData("cancelOrder", []product.Event{product.StockReleased{OrderID: id, Quantity: r.Quantity}})
				if err != nil {
					return err
				}
				w.Also(products.def.Stream(r.ProductID), p.Version, data)
			}
			return nil
		}}))
}
