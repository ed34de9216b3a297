package model

import "github.com/strata-es/strata/internal/domain"

// User is the GraphQL User; its orders are resolved apart (through a data loader).
type User struct {
	ID      string
	Name    string
	Email   string
	Status  UserStatus
	Version int
}

// Order is the GraphQL Order; its customer is resolved apart (through a data loader).
type Order struct {
	ID             string
	CustomerID     string
	Status         OrderStatus
	Items          []*OrderItem
	Total          domain.Money
	Version        int
	Carrier        *string
	TrackingNumber *string
	CancelReason   *string
}
