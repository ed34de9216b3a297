package graph_test

import (
	"os"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/graph/generated"
	"github.com/strata-es/strata/internal/transport/playground"
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

// The queries docs/time-travel.md tells people to paste into the Playground must work.
func TestTimeTravelDocQueriesValidate(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/time-travel.md")
	if err != nil {
		t.Fatal(err)
	}
	schema := generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{}}).Schema()
	blocks := strings.Split(string(doc), "```graphql\n")[1:]
	if len(blocks) < 4 {
		t.Fatalf("%d graphql blocks in docs/time-travel.md, want at least 4", len(blocks))
	}
	for i, b := range blocks {
		q, _, _ := strings.Cut(b, "```")
		if _, errs := gqlparser.LoadQueryWithRules(schema, q, nil); len(errs) > 0 {
			t.Errorf("block %d of docs/time-travel.md: %v\n%s", i+1, errs, q)
		}
	}
}
