package command

import (
	"context"
	"errors"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/eventstore"
)

// OrderResult is an order after a command, the position of its last event (zero in a dry run),
// and the events the command appended (or would append).
type OrderResult struct {
	Order    order.State
	Position eventstore.Position
	Events   []Planned
	DryRun   bool
}

// LoadOrder replays an order's events. An order that does not exist is the zero State.
func (h *Handler) LoadOrder(ctx context.Context, id string) (order.State, error) {
	return h.OrderUntil(ctx, id, Until{})
}

// CreateOrder creates an order with a fresh id for an active customer. The customer's stream
// is checked at the version the customer was read at when the order is written, so an order
// cannot be created for a customer deactivated at the same moment.
func (h *Handler) CreateOrder(ctx context.Context, customerID string, items []order.Item) (OrderResult, error) {
	id, err := newID()
	if err != nil {
		return OrderResult{}, err
	}
	streamID := order.StreamID(id)
	var out OrderResult
	err = h.retry(ctx, streamID, false, func() error {
		customer, err := h.LoadUser(ctx, customerID)
		if err != nil {
			return err
		}
		events, err := order.Decide(order.State{}, order.Create{ID: id, Customer: customer, Items: items})
		if err != nil {
			return err
		}
		data, err := eventData("createOrder", events)
		if err != nil {
			return err
		}
		planned, pos, err := h.commit(ctx, []eventstore.StreamAppend{
			{StreamID: streamID, Expected: eventstore.NoStream(), Events: data},
			{StreamID: user.StreamID(customerID), Expected: eventstore.Exactly(customer.Version)},
		})
		if err != nil {
			return err
		}
		var s order.State
		for _, e := range events {
			s = s.Apply(e)
		}
		out = OrderResult{Order: s, Position: pos, Events: planned, DryRun: h.dryRun}
		return nil
	})
	return out, err
}

// PayOrder pays an order in full.
func (h *Handler) PayOrder(ctx context.Context, id string, amount domain.Money, expected *int64) (OrderResult, error) {
	return h.orderCommand(ctx, "payOrder", id, expected, order.Pay{Amount: amount})
}

// ShipOrder ships a paid order.
func (h *Handler) ShipOrder(ctx context.Context, id, carrier, trackingNumber string, expected *int64) (OrderResult, error) {
	return h.orderCommand(ctx, "shipOrder", id, expected, order.Ship{Carrier: carrier, TrackingNumber: trackingNumber})
}

// CancelOrder cancels an order that has not shipped.
func (h *Handler) CancelOrder(ctx context.Context, id, reason string, expected *int64) (OrderResult, error) {
	return h.orderCommand(ctx, "cancelOrder", id, expected, order.Cancel{Reason: reason})
}

func (h *Handler) orderCommand(ctx context.Context, name, id string, expected *int64, cmd order.Command) (OrderResult, error) {
	streamID := order.StreamID(id)
	var out OrderResult
	err := h.retry(ctx, streamID, expected != nil, func() error {
		s, err := h.LoadOrder(ctx, id)
		if err != nil {
			return err
		}
		if err := checkExpected(streamID, expected, s.Version); err != nil && s.Exists() {
			return err
		}
		events, err := order.Decide(s, cmd)
		if err != nil {
			return err
		}
		data, err := eventData(name, events)
		if err != nil {
			return err
		}
		planned, pos, err := h.commit(ctx, []eventstore.StreamAppend{{StreamID: streamID, Expected: expectedOf(s.Version), Events: data}})
		if err != nil {
			return err
		}
		for _, e := range events {
			s = s.Apply(e)
		}
		out = OrderResult{Order: s, Position: pos, Events: planned, DryRun: h.dryRun}
		return nil
	})
	if errors.Is(err, domain.ErrNotFound) {
		return OrderResult{}, notFound("order", id)
	}
	return out, err
}
