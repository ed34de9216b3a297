package explorer

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// Every operation the Explorer's source names is found in the built script, once for each
// kind when it is built from the kind's name, and each validates against the schema.
func TestDocumentsAreTheExplorersOperations(t *testing.T) {
	kinds := []string{"user", "order", "product"}
	docs, err := Documents(kinds)
	if err != nil {
		t.Fatal(err)
	}
	// The schema is schema.graphql and each file of graph/schema, as gqlgen.yml lists them.
	files, err := filepath.Glob("../../../graph/schema/*.graphql")
	if err != nil {
		t.Fatal(err)
	}
	var sources []*ast.Source
	for _, f := range append([]string{"../../../schema.graphql"}, files...) {
		text, err := os.ReadFile(f) //nolint:gosec // the repository's own files
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: filepath.Base(f), Input: string(text)})
	}
	schema, gerr := gqlparser.LoadSchema(sources...)
	if gerr != nil {
		t.Fatal(gerr)
	}
	names := map[string]int{}
	for _, d := range docs {
		q, errs := gqlparser.LoadQueryWithRules(schema, d, nil) // nil: the default rules
		if len(errs) > 0 {
			t.Errorf("the Explorer's operation %q does not validate: %v", d, errs)
			continue
		}
		for _, op := range q.Operations {
			names[op.Name]++
		}
	}
	// The source's operation names: each fixed one once, each kind's once per kind.
	entries, err := os.ReadDir("../../../web/explorer/src")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`(?:query|subscription) (Explorer(?:\$\{name\(kind\)\})?\w*)`)
	want := map[string]int{}
	for _, e := range entries {
		src, err := os.ReadFile("../../../web/explorer/src/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(src), -1) {
			if strings.Contains(m[1], "${") {
				for _, k := range kinds {
					want[strings.Replace(m[1], "${name(kind)}", kindName(k), 1)] = 1
				}
				continue
			}
			want[m[1]] = 1
		}
	}
	if len(want) < 10 {
		t.Fatalf("found %d operation names in web/explorer/src, fewer than it has: %v", len(want), want)
	}
	for name := range want {
		if names[name] != 1 {
			t.Errorf("operation %s: %d documents, want 1", name, names[name])
		}
	}
	for name := range names {
		if want[name] == 0 {
			t.Errorf("operation %s is in the script but not in web/explorer/src", name)
		}
	}
}
