package command

import (
	"context"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
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

// CreateOrder creates an order with a fresh id for an active customer. The customer's stream
// is checked at the version the customer was read at when the order is written, so an order
// cannot be created for a customer deactivated at the same moment.
func (h *Handler) CreateOrder(ctx context.Context, customerID string, items []order.Item) (OrderResult, error) {
	id, err := NewID()
	if err != nil {
		return OrderResult{}, err
	}
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "createOrder", ID: id, New: true,
		Prepare: func(ctx context.Context, _ Loaded[order.State], w *Write) (order.Command, error) {
			customer, err := h.LoadUser(ctx, customerID)
			if err != nil {
				return nil, err
			}
			w.Check(user.StreamID(customerID), customer.Version)
			return order.Create{ID: id, Customer: customer, Items: items}, nil
		}}))
}

// PayOrder pays an order in full.
func (h *Handler) PayOrder(ctx context.Context, id string, amount domain.Money, expected *int64) (OrderResult, error) {
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "payOrder", ID: id, Expected: expected, Command: order.Pay{Amount: amount}}))
}

// ShipOrder ships a paid order.
func (h *Handler) ShipOrder(ctx context.Context, id, carrier, trackingNumber string, expected *int64) (OrderResult, error) {
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "shipOrder", ID: id, Expected: expected, Command: order.Ship{Carrier: carrier, TrackingNumber: trackingNumber}}))
}

// CancelOrder cancels an order that has not shipped.
func (h *Handler) CancelOrder(ctx context.Context, id, reason string, expected *int64) (OrderResult, error) {
	return orderResult(h.Orders().Execute(ctx, Call[order.State, order.Command]{Name: "cancelOrder", ID: id, Expected: expected, Command: order.Cancel{Reason: reason}}))
}
