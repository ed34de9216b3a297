package pgsql

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Statements of readmodel.sql.
var (
	// ReadmodelColumns lists the columns of table $1, a quoted name; none when it does not exist.
	ReadmodelColumns = get("ReadmodelColumns")
)

// The statements on a read model's table (domain.ReadModel), derived from its declaration: a row
// is written from the state's JSON, column by column (jsonb_populate_record turns the JSON values
// into the columns' types), and read back as jsonb_build_object of the declared fields, so a new
// aggregate's read model needs no SQL of its own. The declared columns come as two slices of one
// length: names[i] is a column, fields[i] the field of the state's JSON it holds. table is the
// live table's name or a rebuild's copy's.

// ReadmodelRow is the select list that reads a row, aliased r, as its id (text), its version
// and its state's JSON (each declared column under its field's name).
func ReadmodelRow(names, fields []string) string {
	pairs := make([]string, 0, len(names))
	for i, name := range names {
		pairs = append(pairs, readmodelLiteral(fields[i])+", r."+pgx.Identifier{name}.Sanitize())
	}
	return `r.id::text, r.version, jsonb_build_object(` + strings.Join(pairs, ", ") + `)`
}

// ReadmodelGet reads the row of id $1 from table, as row (ReadmodelRow) selects it.
func ReadmodelGet(table, row string) string {
	return `SELECT ` + row + ` FROM ` + pgx.Identifier{table}.Sanitize() + ` r WHERE id = $1`
}

// ReadmodelUpsert writes a row to table, a new one or over the one of its id. columns are the
// columns it sets from the state: id and version, then the declared ones (each once). $1 is the
// state's JSON, as a string (in pgx's exec mode, for a pooler in transaction mode, a []byte goes
// as bytea), $2 the id, $3 the version, $4 the position of the event applied and $5 its time.
func ReadmodelUpsert(table string, columns, names, fields []string) string {
	t := pgx.Identifier{table}.Sanitize()
	quoted := make([]string, len(columns))
	values := make([]string, len(columns))
	sets := make([]string, 0, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
		values[i] = readmodelLiteral(c) + ", " + readmodelValue(c, names, fields)
		if c != "id" {
			sets = append(sets, quoted[i]+` = EXCLUDED.`+quoted[i])
		}
	}
	list := strings.Join(quoted, ", ")
	// The state's JSON goes once; each column takes its field, and jsonb_populate_record turns
	// the values into the columns' types.
	return `INSERT INTO ` + t + ` AS r (` + list + `, position, created_at, updated_at, applied)
SELECT ` + list + `, $4, $5, $5, 1 FROM (SELECT $1::jsonb AS s) x,
	jsonb_populate_record(NULL::` + t + `, jsonb_build_object(` + strings.Join(values, ", ") + `))
ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ") + `, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at, applied = r.applied + 1`
}

// readmodelValue is the SQL that takes column c's value out of ReadmodelUpsert's parameters: id
// and version from theirs ($2, $3), a declared column from its field of the state's JSON (x.s).
func readmodelValue(c string, names, fields []string) string {
	switch c {
	case "id":
		return "$2::text"
	case "version":
		return "$3::bigint"
	}
	for i, name := range names {
		if name == c {
			return "x.s->" + readmodelLiteral(fields[i])
		}
	}
	return "NULL"
}

// ReadmodelRemove deletes the row of id $1 from table.
func ReadmodelRemove(table string) string {
	return `DELETE FROM ` + pgx.Identifier{table}.Sanitize() + ` WHERE id = $1`
}

// ReadmodelByID reads the rows of the ids $1 (a text array of uuids) from table, as row selects
// them.
func ReadmodelByID(table, row string) string {
	return `SELECT ` + row + ` FROM ` + pgx.Identifier{table}.Sanitize() + ` r WHERE id = ANY($1::uuid[])`
}

// ReadmodelList reads the rows of table after the id $1 ("" from the first), as row selects them:
// the start of a list, which ReadmodelListPage completes.
func ReadmodelList(table, row string) string {
	return `SELECT ` + row + ` FROM ` + pgx.Identifier{table}.Sanitize() + ` r WHERE ($1 = '' OR id > NULLIF($1, '')::uuid)`
}

// ReadmodelListPage completes list (ReadmodelList) with the conditions where, each of which a
// row must meet, and the page: in id order, at most $2 rows.
func ReadmodelListPage(list string, where []string) string {
	for _, w := range where {
		list += " AND " + w
	}
	return list + ` ORDER BY id LIMIT $2`
}

// ReadmodelEquals is a condition of ReadmodelListPage: column equals parameter n.
func ReadmodelEquals(column string, n int) string {
	return pgx.Identifier{column}.Sanitize() + ` = ` + fmt.Sprintf("$%d", n)
}

// ReadmodelContains is a condition of ReadmodelListPage: column contains parameter n, without
// regard to case. The parameter is a LIKE pattern, its % and _ escaped with backslashes.
func ReadmodelContains(column string, n int) string {
	return pgx.Identifier{column}.Sanitize() + ` ILIKE '%' || ` + fmt.Sprintf("$%d", n) + ` || '%' ESCAPE '\'`
}

// ReadmodelListBy reads a page of the rows of table for each of the values $1 (an array) of
// column, as row selects them: the rows after the id $2 ("" from the first), in id order, $3 at
// most per value; ordered by the value, then the id.
func ReadmodelListBy(table, row, column string) string {
	c := pgx.Identifier{column}.Sanitize()
	return `SELECT ` + row + ` FROM (
	SELECT o.*, row_number() OVER (PARTITION BY ` + c + ` ORDER BY id) AS n
	FROM ` + pgx.Identifier{table}.Sanitize() + ` o WHERE ` + c + ` = ANY($1) AND ($2 = '' OR id > NULLIF($2, '')::uuid)
) r WHERE n <= $3 ORDER BY ` + c + `, id`
}

// readmodelLiteral quotes s as an SQL string literal.
func readmodelLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
