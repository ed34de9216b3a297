// Package readmodel is the storage of the aggregates' declared read models
// (domain.ReadModel): it writes, reads and lists their rows with statements derived from the
// declared columns (built by internal/store/pgsql), and keeps the same rows in memory for a list
// as of a past time. The projector that keeps the tables is package projection's; the queries'
// routing is the API's.
//
// A row is written from the state's JSON, column by column (jsonb_populate_record turns the
// JSON values into the columns' types), and read back as jsonb_build_object of the declared
// fields, straight into the state, so a new aggregate's read model needs no SQL of its own.
package readmodel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// DB is where rows are read and written: a pool, a connection or a transaction.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Model is the read model of one registered aggregate.
type Model struct {
	desc domain.Description
	fold domain.Fold
	rm   domain.ReadModel
	// columns are the columns a write sets from the state: id, version and the declared ones.
	columns []string
	// names and fields are the declared columns, in order, and the state's fields they hold.
	names, fields []string
	// row is the select list that reads a row ("r") as its id, version and state JSON.
	row string
	// stmts are the statements per table (the live one, a rebuild's copy), made once.
	stmts *sync.Map // table → statements
}

// statements are a model's SQL on one table.
type statements struct {
	get, put, remove, byID, list string
}

// compiled keeps every model's SQL, made once per declaration: Of is called per request.
var compiled sync.Map //nolint:gochecknoglobals // a cache of what the declarations imply; key → Model

// Of returns the read model of k, and false when k declares none.
func Of(k domain.Kind) (Model, bool) {
	d := k.Describe()
	if d.ReadModel == nil {
		return Model{}, false
	}
	key := cacheKey(d.Category, d.ReadModel)
	if m, ok := compiled.Load(key); ok {
		return m.(Model), true
	}
	m := Model{desc: d, fold: k.Fold(), rm: *d.ReadModel, columns: []string{"id", "version"}, stmts: &sync.Map{}}
	for _, c := range m.rm.Columns {
		if !slices.Contains(m.columns, c.Name) {
			m.columns = append(m.columns, c.Name)
		}
		m.names = append(m.names, c.Name)
		m.fields = append(m.fields, c.Field)
	}
	m.row = pgsql.ReadmodelRow(m.names, m.fields)
	compiled.Store(key, m)
	return m, true
}

// cacheKey names a declaration in compiled: its category and everything its read model says.
// It is built by hand: Of runs on every read, and formatting the declaration with fmt cost a
// tenth of the server's CPU under GraphQL reads.
func cacheKey(category string, rm *domain.ReadModel) string {
	var b strings.Builder
	b.Grow(64 + 32*(len(rm.Columns)+len(rm.Filters)))
	b.WriteString(category)
	b.WriteByte(0)
	b.WriteString(rm.Table)
	for _, c := range rm.Columns {
		b.WriteString("\x00c")
		b.WriteString(c.Name)
		b.WriteByte(0)
		b.WriteString(c.Field)
	}
	for _, f := range rm.Filters {
		b.WriteString("\x00f")
		b.WriteString(f.Name)
		b.WriteByte(0)
		b.WriteString(f.Column)
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(int(f.Match)))
	}
	return b.String()
}

// on returns the model's statements on table.
func (m Model) on(table string) statements {
	if st, ok := m.stmts.Load(table); ok {
		return st.(statements)
	}
	st := statements{
		get:    pgsql.ReadmodelGet(table, m.row),
		put:    pgsql.ReadmodelUpsert(table, m.columns, m.names, m.fields),
		remove: pgsql.ReadmodelRemove(table),
		byID:   pgsql.ReadmodelByID(table, m.row),
		list:   pgsql.ReadmodelList(table, m.row),
	}
	m.stmts.Store(table, st)
	return st
}

// All returns the read models that kinds declare, in their order.
func All(kinds []domain.Kind) []Model {
	var out []Model
	for _, k := range kinds {
		if m, ok := Of(k); ok {
			out = append(out, m)
		}
	}
	return out
}

// Name is the read model's table, and its projection's name.
func (m Model) Name() string { return m.rm.Table }

// Category is the category of the aggregate whose events it folds.
func (m Model) Category() string { return m.desc.Category }

// Aggregate is the aggregate's declared name.
func (m Model) Aggregate() string { return m.desc.Name }

// Shape is the version of the aggregate's snapshots' shape.
func (m Model) Shape() int { return m.desc.Shape }

// Fold is the aggregate's replay with its state's type erased.
func (m Model) Fold() domain.Fold { return m.fold }

// Row is one aggregate in a read model: its id, state and stream version.
type Row struct {
	ID      string
	State   any
	Version int64
}

// table is the quoted name of table (the live table's, or a rebuild's copy).
func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// scan reads a row selected with m.row: its id, version and state.
func (m Model) scan(row pgx.Row) (Row, error) {
	var (
		r    Row
		data []byte
	)
	if err := row.Scan(&r.ID, &r.Version, &data); err != nil {
		return r, err
	}
	s, err := m.fold.Unmarshal(data)
	if err != nil {
		return r, fmt.Errorf("read model %s: row %s: %w", m.rm.Table, r.ID, err)
	}
	r.State = s
	return r, nil
}

// columnsOf is a row's columns as JSON values, from its state's JSON.
func (m Model) columnsOf(r Row) (map[string]json.RawMessage, error) {
	data, err := json.Marshal(r.State)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("read model %s: the state is not a JSON object: %w", m.rm.Table, err)
	}
	out := make(map[string]json.RawMessage, len(m.columns))
	for _, c := range m.rm.Columns {
		if v, ok := fields[c.Field]; ok {
			out[c.Name] = v
		} else {
			out[c.Name] = json.RawMessage("null")
		}
	}
	if out["id"], err = json.Marshal(r.ID); err != nil {
		return nil, err
	}
	if out["version"], err = json.Marshal(r.Version); err != nil {
		return nil, err
	}
	return out, nil
}

// Get reads the row of id from table (the live table or a rebuild's copy); ok is false when
// there is none.
func (m Model) Get(ctx context.Context, db DB, table, id string) (r Row, ok bool, err error) {
	r, err = m.scan(db.QueryRow(ctx, m.on(table).get, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("read model %s: read %s: %w", m.rm.Table, id, err)
	}
	return r, true, nil
}

// Put writes r to table as of the event at, which it applied last.
func (m Model) Put(ctx context.Context, db DB, table string, r Row, at eventstore.Position, recorded time.Time) error {
	state, err := json.Marshal(r.State)
	if err != nil {
		return err
	}
	if _, err = db.Exec(ctx, m.on(table).put, string(state), r.ID, r.Version, at.String(), recorded); err != nil {
		return fmt.Errorf("read model %s: write %s: %w", m.rm.Table, r.ID, err)
	}
	return nil
}

// Remove deletes the row of id from table.
func (m Model) Remove(ctx context.Context, db DB, table, id string) error {
	if _, err := db.Exec(ctx, m.on(table).remove, id); err != nil {
		return fmt.Errorf("read model %s: delete %s: %w", m.rm.Table, id, err)
	}
	return nil
}

func (m Model) collect(rows pgx.Rows, err error) ([]Row, error) {
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) { return m.scan(row) })
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	return list, nil
}

// ByID reads rows by id in one statement; ids without a row are absent.
func (m Model) ByID(ctx context.Context, db DB, ids []string) (map[string]Row, error) {
	list, err := m.collect(db.Query(ctx, m.on(m.rm.Table).byID, ids))
	if err != nil {
		return nil, err
	}
	out := make(map[string]Row, len(list))
	for _, r := range list {
		out[r.ID] = r
	}
	return out, nil
}

// Page selects a page in id order: First rows after the id After ("" from the start).
type Page struct {
	First int
	After string
}

// Filters are a list's filters by name, with their values; an empty value does not narrow.
type Filters map[string]string

// filter returns the declared filter called name.
func (m Model) filter(name string) (domain.Filter, error) {
	for _, f := range m.rm.Filters {
		if f.Name == name {
			return f, nil
		}
	}
	return domain.Filter{}, fmt.Errorf("read model %s has no filter %q", m.rm.Table, name)
}

// List reads a page of rows in id order, narrowed by filters. It reads one row more than asked:
// more says there is a next page.
func (m Model) List(ctx context.Context, db DB, filters Filters, p Page) (list []Row, more bool, err error) {
	var where []string
	args := []any{p.After, p.First + 1}
	names := make([]string, 0, len(filters))
	for name := range filters {
		names = append(names, name)
	}
	slices.Sort(names) // one statement text per set of filters, for the statement cache
	for _, name := range names {
		v := filters[name]
		if v == "" {
			continue
		}
		f, err := m.filter(name)
		if err != nil {
			return nil, false, err
		}
		args = append(args, v)
		switch f.Match {
		case domain.Contains:
			args[len(args)-1] = escapeLike(v)
			where = append(where, pgsql.ReadmodelContains(f.Column, len(args)))
		default:
			where = append(where, pgsql.ReadmodelEquals(f.Column, len(args)))
		}
	}
	list, err = m.collect(db.Query(ctx, pgsql.ReadmodelListPage(m.on(m.rm.Table).list, where), args...))
	if err != nil {
		return nil, false, err
	}
	if len(list) > p.First {
		return list[:p.First], true, nil
	}
	return list, false, nil
}

// ListBy reads a page of rows for each of keys, a value of column, in one statement: First+1
// rows per key at most (the extra row says there is a next page).
func (m Model) ListBy(ctx context.Context, db DB, column string, keys []string, p Page) (map[string][]Row, error) {
	list, err := m.collect(db.Query(ctx, pgsql.ReadmodelListBy(m.rm.Table, m.row, column), keys, p.After, p.First+1))
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Row, len(keys))
	for _, r := range list {
		k, err := m.value(r, column)
		if err != nil {
			return nil, err
		}
		out[k] = append(out[k], r)
	}
	return out, nil
}

// value is a row's column as a string (text).
func (m Model) value(r Row, column string) (string, error) {
	cols, err := m.columnsOf(r)
	if err != nil {
		return "", err
	}
	return text(cols[column]), nil
}

// text is a column's JSON as a string: a JSON string's text, other JSON as written.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Memory is a read model in memory: the rows of a list as of a past time, replayed from the log
// by the projector's own logic (projection.AsOf).
type Memory map[string]Row

// ListMemory is Model.List on rows in memory, with the same filters and order.
func (m Model) ListMemory(rows Memory, filters Filters, p Page) ([]Row, bool, error) {
	type given struct {
		f domain.Filter
		v string
	}
	var narrow []given // the filters given, looked up once
	for name, v := range filters {
		if v == "" {
			continue
		}
		f, err := m.filter(name)
		if err != nil {
			return nil, false, err
		}
		narrow = append(narrow, given{f, v})
	}
	var list []Row
	for _, r := range rows {
		if r.ID <= p.After {
			continue
		}
		keep := true
		if len(narrow) > 0 {
			cols, err := m.columnsOf(r) // the state's JSON, once per row
			if err != nil {
				return nil, false, err
			}
			for _, g := range narrow {
				got := text(cols[g.f.Column])
				switch g.f.Match {
				case domain.Contains:
					keep = keep && strings.Contains(strings.ToLower(got), strings.ToLower(g.v))
				default:
					keep = keep && got == g.v
				}
			}
		}
		if keep {
			list = append(list, r)
		}
	}
	slices.SortFunc(list, func(a, b Row) int { return cmp.Compare(a.ID, b.ID) })
	if len(list) > p.First {
		return list[:p.First], true, nil
	}
	return list, false, nil
}

// escapeLike makes s match itself literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ErrMismatch is matched by Check's errors about the table itself (missing, or lacking columns);
// its other errors are the database's.
var ErrMismatch = errors.New("the table does not fit the read model")

// runtimeColumns are the columns the runtime writes besides the declared ones.
var runtimeColumns = []string{"position", "created_at", "updated_at", "applied"} //nolint:gochecknoglobals // a constant list

// Check reports a read model whose table is missing, or lacks a column its declaration or the
// runtime writes: its projector would fail every batch. The message names what is missing.
func (m Model) Check(ctx context.Context, db DB) error {
	rows, err := db.Query(ctx, pgsql.ReadmodelColumns, quote(m.rm.Table))
	if err != nil {
		return fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	if len(have) == 0 {
		return fmt.Errorf("read model %s: %w: there is no table %s; the %s aggregate's migration makes it", m.rm.Table, ErrMismatch, m.rm.Table, m.desc.Name)
	}
	var missing []string
	for _, c := range append(slices.Clone(m.columns), runtimeColumns...) {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("read model %s: %w: it lacks the columns %s that the %s aggregate's declaration and the runtime write", m.rm.Table, ErrMismatch, strings.Join(missing, ", "), m.desc.Name)
	}
	return nil
}
