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
// declared once. A block that begins "-- fragment: Name" instead is part of statements, not one
// of its own: {{Name}} in a statement stands for its text, so variants of one statement (an
// append to any version, to a new stream, at a version) share what they have in common. A
// fragment holds classes but no other fragment, and one that no statement uses is an error.
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
	"Match":         advisory.Match,
}

var (
	nameLine    = regexp.MustCompile(`^-- (name|fragment): ([A-Z][A-Za-z0-9]*)\s*$`)
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

// block is a statement or a fragment as a file writes it, its placeholders not yet filled.
type block struct {
	fragment   bool
	name, text string
	file       string
	line       int
}

// load reads every .sql file of fsys into statements by name, with the file each came from.
func load(fsys fs.FS) (map[string]string, map[string]string, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, nil, err
	}
	var blocks []block
	seen := map[string]block{}
	fragments := map[string]block{}
	for _, file := range names {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, nil, err
		}
		read, err := parse(file, string(data))
		if err != nil {
			return nil, nil, err
		}
		for _, b := range read {
			if prev, ok := seen[b.name]; ok {
				return nil, nil, fmt.Errorf("%s:%d: %s is also in %s", b.file, b.line, b.name, prev.file)
			}
			seen[b.name] = b
			if b.fragment {
				fragments[b.name] = b
			}
			blocks = append(blocks, b)
		}
	}
	out, from := map[string]string{}, map[string]string{}
	used := map[string]bool{}
	for _, b := range blocks {
		if b.fragment {
			continue
		}
		var bad error
		sql := placeholder.ReplaceAllStringFunc(b.text, func(m string) string {
			key := placeholder.FindStringSubmatch(m)[1]
			if v, ok := classes[key]; ok {
				return v
			}
			f, ok := fragments[key]
			if !ok {
				if bad == nil {
					bad = fmt.Errorf("%s:%d: statement %s: unknown placeholder %s", b.file, b.line, b.name, m)
				}
				return ""
			}
			used[key] = true
			// A fragment holds classes, never another fragment.
			return placeholder.ReplaceAllStringFunc(f.text, func(m string) string {
				key := placeholder.FindStringSubmatch(m)[1]
				v, ok := classes[key]
				if !ok && bad == nil {
					bad = fmt.Errorf("%s:%d: fragment %s: unknown placeholder %s (a fragment holds advisory classes only)", f.file, f.line, f.name, m)
				}
				return v
			})
		})
		if bad != nil {
			return nil, nil, bad
		}
		out[b.name], from[b.name] = sql, b.file
	}
	for name, f := range fragments {
		if !used[name] {
			return nil, nil, fmt.Errorf("%s:%d: fragment %s is in no statement", f.file, f.line, name)
		}
	}
	return out, from, nil
}

// parse reads the statements and fragments of one file.
func parse(file, text string) ([]block, error) {
	var (
		out  []block
		cur  block
		body strings.Builder
		line int
	)
	flush := func() error {
		if cur.name == "" {
			if strings.TrimSpace(body.String()) != "" && !onlyComments(body.String()) {
				return fmt.Errorf("%s: SQL before the first \"-- name:\" line", file)
			}
			return nil
		}
		cur.text = strings.TrimSpace(body.String())
		if cur.text == "" {
			return fmt.Errorf("%s:%d: statement %s is empty", file, cur.line, cur.name)
		}
		out = append(out, cur)
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line++
		if m := nameLine.FindStringSubmatch(sc.Text()); m != nil {
			if err := flush(); err != nil {
				return nil, err
			}
			cur = block{fragment: m[1] == "fragment", name: m[2], file: file, line: line}
			body.Reset()
			continue
		}
		if strings.HasPrefix(sc.Text(), "-- name:") || strings.HasPrefix(sc.Text(), "-- fragment:") {
			return nil, fmt.Errorf("%s:%d: a name line is \"-- name: Name\" or \"-- fragment: Name\", with a name in CamelCase", file, line)
		}
		body.WriteString(sc.Text())
		body.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
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
