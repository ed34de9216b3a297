package pgsql

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseRefusesWhatIsNotAStatementFile(t *testing.T) {
	cases := map[string]string{
		"SQL before the first": "SELECT 1;\n-- name: One\nSELECT 1\n",
		"is empty":             "-- name: One\n\n-- name: Two\nSELECT 2\n",
		"unknown placeholder":  "-- name: One\nSELECT pg_advisory_xact_lock({{Nope}}, 1)\n",
		"is also in":           "-- name: One\nSELECT 1\n-- name: One\nSELECT 2\n",
		"with a name in Camel": "-- name: one_two\nSELECT 1\n",
	}
	for want, text := range cases {
		_, _, err := load(fstest.MapFS{"a.sql": {Data: []byte(text)}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load(%q) = %v, want an error saying %q", text, err, want)
		}
	}
}

func TestParseReadsStatementsAndPlaceholders(t *testing.T) {
	text := "-- a file's header\n-- name: One\n-- why one\nSELECT 1\n\n-- name: Lock\nSELECT pg_advisory_xact_lock({{Stream}}, hashtext($1))\n"
	got, from, err := load(fstest.MapFS{"a.sql": {Data: []byte(text)}})
	if err != nil {
		t.Fatal(err)
	}
	if got["One"] != "-- why one\nSELECT 1" {
		t.Errorf("One = %q", got["One"])
	}
	if want := "SELECT pg_advisory_xact_lock(" + classes["Stream"] + ", hashtext($1))"; got["Lock"] != want {
		t.Errorf("Lock = %q, want %q", got["Lock"], want)
	}
	if from["Lock"] != "a.sql" || len(got) != 2 {
		t.Errorf("from = %v, got %d statements", from, len(got))
	}
}

func TestParseFillsFragments(t *testing.T) {
	text := "-- name: One\n{{Head}}\n1\n-- fragment: Head\nSELECT pg_advisory_xact_lock({{Stream}}, 0),\n-- name: Two\n{{Head}}\n2\n"
	got, _, err := load(fstest.MapFS{"a.sql": {Data: []byte(text)}})
	if err != nil {
		t.Fatal(err)
	}
	head := "SELECT pg_advisory_xact_lock(" + classes["Stream"] + ", 0),"
	if got["One"] != head+"\n1" || got["Two"] != head+"\n2" || len(got) != 2 {
		t.Errorf("statements = %q, want One and Two on the fragment, and no statement Head", got)
	}
}

// TestEveryStatementHasAVariable: a statement in a .sql file that no variable names is dead text.
func TestEveryStatementHasAVariable(t *testing.T) {
	if unused := Unused(); len(unused) > 0 {
		t.Errorf("statements no variable is set from: %v", unused)
	}
}

// sqlStart matches a string that begins like SQL: a keyword in capitals, then a space or the
// end of the line. Strata writes SQL keywords in capitals and log messages in lower case.
var sqlStart = regexp.MustCompile(`^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LOCK|LISTEN|UNLISTEN|NOTIFY|TRUNCATE|COPY|SET|RESET|SHOW|BEGIN|COMMIT|ROLLBACK|VACUUM|ANALYZE|GRANT|REVOKE|EXPLAIN|PREPARE|DEALLOCATE|DECLARE|FETCH|WHERE|AND|OR|FROM|JOIN|ORDER BY|GROUP BY|LIMIT|VALUES|RETURNING|ON CONFLICT|ATTACH|DETACH)(\s|$)`)

// TestNoSQLOutsideThisPackage reads every non-test Go file of the module outside this package
// and fails on a string literal that begins like SQL.
func TestNoSQLOutsideThisPackage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case path == here, d.Name() == "node_modules", d.Name() == ".git", d.Name() == "testdata", d.Name() == "web":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !sqlStart.MatchString(s) {
				return true
			}
			line := strings.SplitN(strings.TrimSpace(s), "\n", 2)[0]
			t.Errorf("%s/%s: SQL outside internal/store/pgsql: %q", pkg, filepath.Base(path), line)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d files; the walk missed the module", files)
	}
}
