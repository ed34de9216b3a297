// Package product is the Product aggregate: a product with a SKU unique among products, a name,
// a price and a stock, created ACTIVE and discontinued for good. Its events live in stream
// product-<id>; its read model is the products table.
package product

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/strata-es/strata/internal/domain"
)

// Status is a product's lifecycle state: ACTIVE, then DISCONTINUED for good.
type Status string

// Statuses.
const (
	StatusActive       Status = "ACTIVE"
	StatusDiscontinued Status = "DISCONTINUED"
)

// Category is the category of products' streams: product-<id>.
const Category = "product"

// SKUCategory names the tags of SKUs (a product's SKU is unique among products): see
// Definition's Unique.
const SKUCategory = "productsku"

// SKUKey is a SKU as SKUs are compared: SKUs that differ only in case are one SKU.
func SKUKey(sku string) string { return strings.ToLower(sku) }

// Limits.
const (
	MaxTextLen = 200           // characters of a SKU or a name
	MaxStock   = 1_000_000_000 // units in stock
)

// State is a product as its events leave it.
type State struct {
	ID     string
	SKU    string
	Name   string
	Price  domain.Money
	Stock  int64
	Status Status
}

// Events. Type names are stored with every event and must never change.
type (
	// Event is one of the product's events.
	Event interface{ EventType() string }
	// Created is a product's first event.
	Created struct {
		ProductID string       `json:"productId"`
		SKU       string       `json:"sku"`
		Name      string       `json:"name"`
		Price     domain.Money `json:"price"`
		Stock     int64        `json:"stock"`
	}
	// Renamed gives the product a new name.
	Renamed struct {
		Name string `json:"name"`
	}
	// PriceChanged gives the product a new price.
	PriceChanged struct {
		Price domain.Money `json:"price"`
	}
	// Restocked adds Quantity units to the stock.
	Restocked struct {
		Quantity int64 `json:"quantity"`
	}
	// Discontinued ends the product for good; it keeps its SKU.
	Discontinued struct{}
	// StockReserved takes Quantity units from the stock for an order. The order's command
	// appends it, in the order's own write and under the product's version, so that the stock
	// never goes below 0 (internal/runtime/command, CreateOrder).
	StockReserved struct {
		OrderID  string `json:"orderId"`
		Quantity int64  `json:"quantity"`
	}
	// StockReleased gives an order's reserved units back, when the order is cancelled; also to
	// a discontinued product.
	StockReleased struct {
		OrderID  string `json:"orderId"`
		Quantity int64  `json:"quantity"`
	}
)

// EventType implements Event: the stored type names, which never change.
func (Created) EventType() string { return "ProductCreated" }

// EventType implements Event.
func (Renamed) EventType() string { return "ProductRenamed" }

// EventType implements Event.
func (PriceChanged) EventType() string { return "ProductPriceChanged" }

// EventType implements Event.
func (Restocked) EventType() string { return "ProductRestocked" }

// EventType implements Event.
func (Discontinued) EventType() string { return "ProductDiscontinued" }

// EventType implements Event.
func (StockReserved) EventType() string { return "StockReserved" }

// EventType implements Event.
func (StockReleased) EventType() string { return "StockReleased" }

// Evolve returns the state after e.
func Evolve(s State, e Event) State {
	switch e := e.(type) {
	case Created:
		s = State{ID: e.ProductID, SKU: e.SKU, Name: e.Name, Price: e.Price, Stock: e.Stock, Status: StatusActive}
	case Renamed:
		s.Name = e.Name
	case PriceChanged:
		s.Price = e.Price
	case Restocked:
		s.Stock += e.Quantity
	case Discontinued:
		s.Status = StatusDiscontinued
	case StockReserved:
		s.Stock -= e.Quantity
	case StockReleased:
		s.Stock += e.Quantity
	}
	return s
}

// Commands.
type (
	// Command is one of the product's commands.
	Command interface{ isCommand() }
	// Create creates a product with the fresh id ID.
	Create struct {
		ID, SKU, Name string
		Price         domain.Money
		Stock         int64
	}
	// Rename renames the product.
	Rename struct{ Name string }
	// ChangePrice changes its price.
	ChangePrice struct{ Price domain.Money }
	// Restock adds units to its stock.
	Restock struct{ Quantity int64 }
	// Discontinue discontinues it.
	Discontinue struct{}
)

func (Create) isCommand()      {}
func (Rename) isCommand()      {}
func (ChangePrice) isCommand() {}
func (Restock) isCommand()     {}
func (Discontinue) isCommand() {}

// Decide returns the events c produces on s, or the rule it would break.
func Decide(s State, c Command) ([]Event, error) {
	if c, ok := c.(Create); ok {
		if s.ID != "" {
			return nil, domain.Broken("product-new", "product %s already exists", s.ID)
		}
		for _, err := range []error{text("sku", c.SKU), text("name", c.Name), price(c.Price), stock(c.Stock)} {
			if err != nil {
				return nil, err
			}
		}
		return []Event{Created{ProductID: c.ID, SKU: c.SKU, Name: c.Name, Price: c.Price, Stock: c.Stock}}, nil
	}
	switch {
	case s.ID == "":
		return nil, fmt.Errorf("product: %w", domain.ErrNotFound)
	case s.Status == StatusDiscontinued:
		return nil, domain.Broken("product-active", "product %s is discontinued", s.ID)
	}
	switch c := c.(type) {
	case Rename:
		return one(Renamed(c), text("name", c.Name))
	case ChangePrice:
		return one(PriceChanged(c), price(c.Price))
	case Restock:
		if c.Quantity < 1 {
			return nil, domain.Broken("quantity-positive", "a restock adds at least 1 unit, not %d", c.Quantity)
		}
		return one(Restocked(c), stock(s.Stock+min(c.Quantity, MaxStock+1)))
	case Discontinue:
		return []Event{Discontinued{}}, nil
	}
	return nil, fmt.Errorf("product: unknown command %T", c)
}

func one(e Event, err error) ([]Event, error) {
	if err != nil {
		return nil, err
	}
	return []Event{e}, nil
}

func text(field, v string) error {
	if strings.TrimSpace(v) == "" || utf8.RuneCountInString(v) > MaxTextLen {
		return domain.Broken(field+"-valid", "a product's %s has 1 to %d characters, not only spaces", field, MaxTextLen)
	}
	return nil
}

func price(p domain.Money) error {
	if p <= 0 || p > domain.MaxMoney {
		return domain.Broken("product-price-valid", "a price is more than 0 and at most %s, not %s", domain.MaxMoney, p)
	}
	return nil
}

func stock(n int64) error {
	if n < 0 || n > MaxStock {
		return domain.Broken("stock-valid", "a stock is 0 to %d units, not %d", MaxStock, n)
	}
	return nil
}

// Definition declares the Product aggregate.
func Definition() domain.Aggregate[State, Event, Command] {
	events := []Event{Created{}, Renamed{}, PriceChanged{}, Restocked{}, Discontinued{}, StockReserved{}, StockReleased{}}
	return domain.Aggregate[State, Event, Command]{
		Name: "Product", Category: Category, Shape: 1,
		Decode: domain.DecodeJSON[Event]("product", events...),
		Events: events,
		Evolve: Evolve, Decide: Decide,
		Fields: func(s State) []domain.Field {
			return []domain.Field{{Name: "sku", Value: s.SKU}, {Name: "name", Value: s.Name}, {Name: "price", Value: s.Price.String()},
				{Name: "stock", Value: s.Stock}, {Name: "status", Value: string(s.Status)}}
		},
		// SKUs that differ only in case are one SKU.
		Unique: []domain.Unique[State]{{Rule: "sku-unique", Name: "SKU", Category: SKUCategory, Key: func(s State) string { return SKUKey(s.SKU) }}},
		ReadModel: &domain.ReadModel{
			Table: "products",
			Columns: []domain.Column{{Name: "id", Field: "ID"}, {Name: "sku", Field: "SKU"}, {Name: "name", Field: "Name"},
				{Name: "price", Field: "Price"}, {Name: "stock", Field: "Stock"}, {Name: "status", Field: "Status"}},
			Filters: []domain.Filter{{Name: "status", Column: "status"}},
		},
	}
}
