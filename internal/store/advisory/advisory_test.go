package advisory_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestClassesAreDistinct reads the package's source, so that a class added later is checked
// too: every constant whose name does not end in Key is a class, a decimal int4 literal (the
// two-int form of the advisory-lock functions), and no two classes are the same number.
func TestClassesAreDistinct(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	byNumber := map[int64]string{}
	classes := map[string]bool{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if strings.HasSuffix(name.Name, "Key") {
						continue
					}
					if i >= len(vs.Values) {
						t.Errorf("class %s: no value of its own", name.Name)
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("class %s: not a string literal", name.Name)
						continue
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					n, err := strconv.ParseInt(s, 10, 32)
					if err != nil || strconv.FormatInt(n, 10) != s {
						t.Errorf("class %s = %q: not a decimal int4 written plainly", name.Name, s)
						continue
					}
					if other, dup := byNumber[n]; dup {
						t.Errorf("classes %s and %s are both %d", other, name.Name, n)
					}
					byNumber[n] = name.Name
					classes[name.Name] = true
				}
			}
		}
	}
	for _, want := range []string{"Stream", "Checkpoint", "Rebuild", "Subject", "Leader", "Partitions"} {
		if !classes[want] {
			t.Errorf("class %s not found", want)
		}
	}
}
