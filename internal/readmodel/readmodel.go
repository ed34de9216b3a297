// Package readmodel is the storage of the aggregates' declared read models
// (domain.ReadModel): the SQL that writes, reads and lists their rows, derived from the declared
// columns, and the same rows in memory for a list as of a past time. The projector that keeps
// the tables is package projection's; the queries' routing is the API's.
//
// A row is written from the state's JSON, column by column (jsonb_populate_record turns the
// JSON values into the columns' types), and read back with to_jsonb into the state's JSON, so a
// new aggregate's read model needs no SQL of its own.
package readmodel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/eventstore"
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
}

// Of returns the read model of k, and false when k declares none.
func Of(k domain.Kind) (Model, bool) {
	d := k.Describe()
	if d.ReadModel == nil {
		return Model{}, false
	}
	m := Model{desc: d, fold: k.Fold(), rm: *d.ReadModel, columns: []string{"id", "version"}}
	for _, c := range m.rm.Columns {
		if !slices.Contains(m.columns, c.Name) {
			m.columns = append(m.columns, c.Name)
		}
	}
	return m, true
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

// decode reads a row from its to_jsonb.
func (m Model) decode(b []byte) (Row, error) {
	var cols map[string]json.RawMessage
	if err := json.Unmarshal(b, &cols); err != nil {
		return Row{}, fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	fields := make(map[string]json.RawMessage, len(m.rm.Columns))
	for _, c := range m.rm.Columns {
		if v, ok := cols[c.Name]; ok {
			fields[c.Field] = v
		}
	}
	var r Row
	if err := json.Unmarshal(cols["id"], &r.ID); err != nil {
		return r, fmt.Errorf("read model %s: id: %w", m.rm.Table, err)
	}
	if err := json.Unmarshal(cols["version"], &r.Version); err != nil {
		return r, fmt.Errorf("read model %s: version of %s: %w", m.rm.Table, r.ID, err)
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return r, err
	}
	if r.State, err = m.fold.Unmarshal(data); err != nil {
		return r, fmt.Errorf("read model %s: row %s: %w", m.rm.Table, r.ID, err)
	}
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
	var b []byte
	err = db.QueryRow(ctx, `SELECT to_jsonb(r) FROM `+quote(table)+` r WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("read model %s: read %s: %w", m.rm.Table, id, err)
	}
	r, err = m.decode(b)
	return r, err == nil, err
}

// Put writes r to table as of the event at, which it applied last.
func (m Model) Put(ctx context.Context, db DB, table string, r Row, at eventstore.Position, recorded time.Time) error {
	cols, err := m.columnsOf(r)
	if err != nil {
		return err
	}
	obj, err := json.Marshal(cols)
	if err != nil {
		return err
	}
	names := make([]string, len(m.columns))
	sets := make([]string, 0, len(m.columns))
	for i, c := range m.columns {
		names[i] = quote(c)
		if c != "id" {
			sets = append(sets, names[i]+` = EXCLUDED.`+names[i])
		}
	}
	list := strings.Join(names, ", ")
	t := quote(table)
	// The JSON goes as a string: in pgx's exec mode (a pooler in transaction mode) a []byte
	// goes as bytea.
	_, err = db.Exec(ctx, `INSERT INTO `+t+` AS r (`+list+`, position, created_at, updated_at, applied)
SELECT `+list+`, $2, $3, $3, 1 FROM jsonb_populate_record(NULL::`+t+`, $1::jsonb)
ON CONFLICT (id) DO UPDATE SET `+strings.Join(sets, ", ")+`, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at, applied = r.applied + 1`,
		string(obj), at.String(), recorded)
	if err != nil {
		return fmt.Errorf("read model %s: write %s: %w", m.rm.Table, r.ID, err)
	}
	return nil
}

// Remove deletes the row of id from table.
func (m Model) Remove(ctx context.Context, db DB, table, id string) error {
	if _, err := db.Exec(ctx, `DELETE FROM `+quote(table)+` WHERE id = $1`, id); err != nil {
		return fmt.Errorf("read model %s: delete %s: %w", m.rm.Table, id, err)
	}
	return nil
}

func (m Model) collect(rows pgx.Rows, err error) ([]Row, error) {
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) {
		var b []byte
		if err := row.Scan(&b); err != nil {
			return Row{}, err
		}
		return m.decode(b)
	})
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", m.rm.Table, err)
	}
	return list, nil
}

// ByID reads rows by id in one statement; ids without a row are absent.
func (m Model) ByID(ctx context.Context, db DB, ids []string) (map[string]Row, error) {
	list, err := m.collect(db.Query(ctx, `SELECT to_jsonb(r) FROM `+quote(m.rm.Table)+` r WHERE id = ANY($1::uuid[])`, ids))
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
	where := []string{`($1 = '' OR id > NULLIF($1, '')::uuid)`}
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
		n := fmt.Sprintf("$%d", len(args))
		switch f.Match {
		case domain.Contains:
			args[len(args)-1] = escapeLike(v)
			where = append(where, quote(f.Column)+` ILIKE '%' || `+n+` || '%' ESCAPE '\'`)
		default:
			where = append(where, quote(f.Column)+` = `+n)
		}
	}
	list, err = m.collect(db.Query(ctx, `SELECT to_jsonb(r) FROM `+quote(m.rm.Table)+` r WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT $2`, args...))
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
	c := quote(column)
	list, err := m.collect(db.Query(ctx, `SELECT to_jsonb(r) - 'n' FROM (
	SELECT o.*, row_number() OVER (PARTITION BY `+c+` ORDER BY id) AS n
	FROM `+quote(m.rm.Table)+` o WHERE `+c+` = ANY($1) AND ($2 = '' OR id > NULLIF($2, '')::uuid)
) r WHERE n <= $3 ORDER BY `+c+`, id`, keys, p.After, p.First+1))
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

// value is a row's column as a string: a JSON string's text, other JSON as written.
func (m Model) value(r Row, column string) (string, error) {
	cols, err := m.columnsOf(r)
	if err != nil {
		return "", err
	}
	raw := cols[column]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	return string(raw), nil
}

// Memory is a read model in memory: the rows of a list as of a past time, replayed from the log
// by the projector's own logic (projection.AsOf).
type Memory map[string]Row

// ListMemory is Model.List on rows in memory, with the same filters and order.
func (m Model) ListMemory(rows Memory, filters Filters, p Page) ([]Row, bool, error) {
	var list []Row
	for _, r := range rows {
		if r.ID <= p.After {
			continue
		}
		keep := true
		for name, v := range filters {
			if v == "" {
				continue
			}
			f, err := m.filter(name)
			if err != nil {
				return nil, false, err
			}
			got, err := m.value(r, f.Column)
			if err != nil {
				return nil, false, err
			}
			switch f.Match {
			case domain.Contains:
				keep = keep && strings.Contains(strings.ToLower(got), strings.ToLower(v))
			default:
				keep = keep && got == v
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
