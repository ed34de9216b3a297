// Package graph holds Strata's GraphQL resolvers: thin translations between the schema in
// schema.graphql and the packages under internal/. The code gqlgen generates lives apart, in
// graph/generated and graph/model, and is never edited by hand.
package graph

//go:generate go tool gqlgen generate

import "github.com/strata-es/strata/internal/eventstore"

// Resolver carries what the resolvers need; app builds it.
type Resolver struct {
	Store *eventstore.Store
	// MaxPageSize caps first on every connection; 0 means DefaultMaxPageSize.
	MaxPageSize int
}
