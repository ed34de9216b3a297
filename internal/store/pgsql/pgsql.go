// Package pgsql holds the SQL Strata runs, the one place it is written: every other package
// names a statement from here and never writes SQL of its own (migrations aside, which are SQL
// files of their own in migrations/). A test enforces it, and prepares every statement against a
// migrated database, so a statement that no longer fits the schema fails before any code runs it.
//
// Statements live in the .sql files of this folder, embedded, one file per area (the event
// store, projections, partitions, ...). Each begins with a line
//
//	-- name: Name
//
// and runs to the next such line or the end of the file; comments above a statement's first
// line are part of its text and reach PostgreSQL's logs with it. Names are unique across files.
// In a statement, {{Class}} stands for an advisory-lock class of internal/store/advisory (for
// example {{Stream}}), written into the text when the files are loaded, so the classes stay
// declared once.
//
// The Go side declares one variable per statement in the file of its area (eventstore.go for
// eventstore.sql), so a name that is misspelled or missing fails when the program starts, and
// every use of a statement is a reference a reader can follow. Statements whose text depends on
// identifiers (a table of a declared read model, a partition) are built by functions here that
// quote every identifier.
package pgsql

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/strata-es/strata/internal/store/advisory"
)

//go:embed *.sql
var files embed.FS

// classes are the placeholders a statement may use, by name.
var classes = map[string]string{
	"Stream":        advisory.Stream,
	"Checkpoint":    advisory.Checkpoint,
	"Rebuild":       advisory.Rebuild,
	"Subject":       advisory.Subject,
	"Leader":        advisory.Leader,
	"Partitions":    advisory.Partitions,
	"PartitionsKey": advisory.PartitionsKey,
}

var (
	nameLine    = regexp.MustCompile(`^-- name: ([A-Z][A-Za-z0-9]*)\s*$`)
	placeholder = regexp.MustCompile(`\{\{([A-Za-z]+)\}\}`)
)

// statements are the loaded statements by name, and the file each came from.
var statements, origins = mustLoad(files)

func mustLoad(fsys fs.FS) (map[string]string, map[string]string) {
	s, o, err := load(fsys)
	if err != nil {
		panic("pgsql: " + err.Error())
	}
	return s, o
}

// load reads every .sql file of fsys into statements by name.
func load(fsys fs.FS) (map[string]string, map[string]string, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, nil, err
	}
	out, from := map[string]string{}, map[string]string{}
	for _, file := range names {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, nil, err
		}
		if err := parse(file, string(data), out, from); err != nil {
			return nil, nil, err
		}
	}
	return out, from, nil
}

// parse adds the statements of one file to out.
func parse(file, text string, out, from map[string]string) error {
	var (
		name  string
		body  strings.Builder
		line  int
		start int
	)
	flush := func() error {
		if name == "" {
			if strings.TrimSpace(body.String()) != "" && !onlyComments(body.String()) {
				return fmt.Errorf("%s: SQL before the first \"-- name:\" line", file)
			}
			return nil
		}
		sql := strings.TrimSpace(body.String())
		if sql == "" {
			return fmt.Errorf("%s:%d: statement %s is empty", file, start, name)
		}
		var bad error
		sql = placeholder.ReplaceAllStringFunc(sql, func(m string) string {
			key := placeholder.FindStringSubmatch(m)[1]
			v, ok := classes[key]
			if !ok && bad == nil {
				bad = fmt.Errorf("%s:%d: statement %s: unknown placeholder %s", file, start, name, m)
			}
			return v
		})
		if bad != nil {
			return bad
		}
		if prev, ok := from[name]; ok {
			return fmt.Errorf("%s:%d: statement %s is also in %s", file, start, name, prev)
		}
		out[name], from[name] = sql, file
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line++
		if m := nameLine.FindStringSubmatch(sc.Text()); m != nil {
			if err := flush(); err != nil {
				return err
			}
			name, start = m[1], line
			body.Reset()
			continue
		}
		if strings.HasPrefix(sc.Text(), "-- name:") {
			return fmt.Errorf("%s:%d: a name line is \"-- name: Name\", with a name in CamelCase", file, line)
		}
		body.WriteString(sc.Text())
		body.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

func onlyComments(s string) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			return false
		}
	}
	return true
}

// get returns the statement called name. A variable of this package is set from it when the
// program starts, so a missing statement stops the program at once, naming it.
func get(name string) string {
	s, ok := statements[name]
	if !ok {
		panic(fmt.Sprintf("pgsql: no statement %q in %s", name, strings.Join(sortedFiles(), ", ")))
	}
	used[name] = true
	return s
}

// used records the statements a variable was set from; a test checks that none is left unused.
var used = map[string]bool{}

func sortedFiles() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range origins {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// Named returns every statement by name, for the test that prepares them all.
func Named() map[string]string {
	out := make(map[string]string, len(statements))
	for k, v := range statements {
		out[k] = v
	}
	return out
}

// Unused returns the names of statements no variable was set from.
func Unused() []string {
	var out []string
	for name := range statements {
		if !used[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
