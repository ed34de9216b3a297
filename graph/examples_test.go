package graph_test

import (
	"testing"

	"github.com/vektah/gqlparser/v2"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/graph/generated"
	"github.com/strata-es/strata/internal/playground"
)

// The Playground opens with these operations: each must be valid against the schema served.
func TestPlaygroundExamplesValidateAgainstTheSchema(t *testing.T) {
	t.Parallel()
	schema := generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{}}).Schema()
	doc, errs := gqlparser.LoadQueryWithRules(schema, playground.Examples(), nil) // nil: the default rules
	if len(errs) > 0 {
		t.Fatalf("examples.graphql does not validate against schema.graphql: %v", errs)
	}
	if len(doc.Operations) < 5 {
		t.Errorf("%d example operations, want at least 5", len(doc.Operations))
	}
}
