package app_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/strata-es/strata/"

// layer returns the rank of the layer a package (its path in the module) belongs to: a package
// may import packages of a lower rank, and of its own folder group. The folders are the layers
// (README, "Layout").
func layer(pkg string) (rank int, group string) {
	top := func(prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
	switch {
	case top("cmd"):
		return 8, "cmd"
	case top("internal/app"):
		return 7, "app"
	case top("graph"), top("internal/transport"):
		return 6, "transport"
	case top("internal/platform"), top("internal/testsupport"):
		return 5, "platform"
	case top("internal/service"):
		return 4, "service"
	case top("internal/runtime"):
		return 3, "runtime"
	case top("internal/store"):
		return 2, "store"
	case top("internal/domain"):
		return 1, "domain"
	case top("migrations"):
		return 0, "migrations"
	}
	return -1, ""
}

// TestImportsGoDownTheLayers reads the imports of every non-test Go file in the module and
// fails when a package imports one of a higher layer (a store package importing the runtime, the
// runtime importing the application, ...), or lies in no layer at all.
func TestImportsGoDownTheLayers(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "testdata", "web", "docs":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		from := filepath.ToSlash(rel)
		fromRank, fromGroup := layer(from)
		if fromRank < 0 {
			t.Errorf("%s: package %s lies in no layer", path, from)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(p, module) {
				continue
			}
			to := strings.TrimPrefix(p, module)
			toRank, toGroup := layer(to)
			if toGroup != fromGroup && toRank >= fromRank {
				t.Errorf("%s: %s (%s) imports %s (%s), a layer at or above its own", filepath.Base(path), from, fromGroup, to, toGroup)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read the imports of %d files; the walk missed the module", files)
	}
}

// TestLayerRanksOrderTheFlow pins the rule the test above applies to a few known pairs, so a
// change to layer that let everything through would fail.
func TestLayerRanksOrderTheFlow(t *testing.T) {
	below := [][2]string{
		{"graph", "internal/service"},
		{"internal/transport/cli", "internal/platform/config"},
		{"internal/service", "internal/runtime/command"},
		{"internal/runtime/projection", "internal/store/eventstore"},
		{"internal/store/readmodel", "internal/domain"},
		{"internal/app", "graph"},
	}
	for _, pair := range below {
		hi, _ := layer(pair[0])
		lo, _ := layer(pair[1])
		if lo >= hi {
			t.Errorf("%s should be below %s", pair[1], pair[0])
		}
	}
}
