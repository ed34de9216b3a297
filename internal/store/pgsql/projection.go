package pgsql

import "github.com/jackc/pgx/v5"

// Statements of projection.sql.
var (
	// ProjectionSnapshot reads the state of stream $1's snapshot at version $2 of shape $3: where
	// the read model's row of a truncated stream starts.
	ProjectionSnapshot = get("ProjectionSnapshot")
	// ProjectionLiveAndCopyCheckpoints reads the positions of the live checkpoint $1 and of its
	// rebuild's checkpoint $2, to tell whether the copy is behind the live table.
	ProjectionLiveAndCopyCheckpoints = get("ProjectionLiveAndCopyCheckpoints")
	// ProjectionTryRebuildLock takes the session advisory lock (class advisory.Rebuild) that
	// marks a running rebuild of projection $1, if no one holds it: a boolean.
	ProjectionTryRebuildLock = get("ProjectionTryRebuildLock")
	// ProjectionRebuildUnlock releases the rebuild lock of projection $1.
	ProjectionRebuildUnlock = get("ProjectionRebuildUnlock")
	// ProjectionResetCheckpoint makes a rebuild's checkpoint $1, or puts the one a rebuild that
	// died left back at the start of the log.
	ProjectionResetCheckpoint = get("ProjectionResetCheckpoint")
	// ProjectionTakeCheckpoint sets the live checkpoint $1 to the rebuild's checkpoint $2
	// (position and skipped count), as the copy is swapped in.
	ProjectionTakeCheckpoint = get("ProjectionTakeCheckpoint")
	// ProjectionDeleteCheckpoint deletes checkpoint $1 (a rebuild's, once swapped in).
	ProjectionDeleteCheckpoint = get("ProjectionDeleteCheckpoint")
	// ProjectionIndexesAndConstraints lists the indexes and constraints of the live table $1 and
	// of its rebuild's copy $2: rows (schema, of the copy, is a constraint, name, key), where the
	// key is the same for an index or constraint of the live table and its counterpart in the copy.
	ProjectionIndexesAndConstraints = get("ProjectionIndexesAndConstraints")
)

// The order_stats read model (projection.OrderStats), on table: order_stats, or a rebuild's
// copy of it. $1 is always the order's id; position is the event's, as text.

// ProjectionOrderStatsDelete deletes the row of order $1: its stream was deleted.
func ProjectionOrderStatsDelete(table string) string {
	return `DELETE FROM ` + pgx.Identifier{table}.Sanitize() + ` WHERE id = $1`
}

// ProjectionOrderStatsVersion reads the stream version order $1's row is at.
func ProjectionOrderStatsVersion(table string) string {
	return `SELECT version FROM ` + pgx.Identifier{table}.Sanitize() + ` WHERE id = $1`
}

// ProjectionOrderStatsCreated writes the row of order $1, created at $2, at version $3 and
// position $4.
func ProjectionOrderStatsCreated(table string) string {
	return `INSERT INTO ` + pgx.Identifier{table}.Sanitize() + ` (id, created_at, version, position, applied) VALUES ($1, $2, $3, $4, 1)`
}

// ProjectionOrderStatsPaid sets order $1 paid at $2, amount $3, at version $4 and position $5.
func ProjectionOrderStatsPaid(table string) string {
	return `UPDATE ` + pgx.Identifier{table}.Sanitize() + ` SET paid_at = $2, amount_paid = $3, version = $4, position = $5, applied = applied + 1 WHERE id = $1`
}

// ProjectionOrderStatsShipped sets order $1 shipped at $2, at version $3 and position $4.
func ProjectionOrderStatsShipped(table string) string {
	return `UPDATE ` + pgx.Identifier{table}.Sanitize() + ` SET shipped_at = $2, version = $3, position = $4, applied = applied + 1 WHERE id = $1`
}

// ProjectionOrderStatsCancelled sets order $1 cancelled at $2, at version $3 and position $4.
func ProjectionOrderStatsCancelled(table string) string {
	return `UPDATE ` + pgx.Identifier{table}.Sanitize() + ` SET cancelled_at = $2, version = $3, position = $4, applied = applied + 1 WHERE id = $1`
}

// ProjectionOrderStatsMoved moves order $1's row to version $2 and position $3, for an event
// that sets none of its times.
func ProjectionOrderStatsMoved(table string) string {
	return `UPDATE ` + pgx.Identifier{table}.Sanitize() + ` SET version = $2, position = $3 WHERE id = $1`
}

// A rebuild's tables: the copy it fills is made like the live table, and swapped in.

// ProjectionDropCopy drops copyTable, the copy a rebuild that died left behind, if there is one.
func ProjectionDropCopy(copyTable string) string {
	return `DROP TABLE IF EXISTS ` + pgx.Identifier{copyTable}.Sanitize()
}

// ProjectionCreateCopy makes copyTable, an empty copy of live with its columns, defaults,
// constraints and indexes.
func ProjectionCreateCopy(copyTable, live string) string {
	return `CREATE TABLE ` + pgx.Identifier{copyTable}.Sanitize() + ` (LIKE ` + pgx.Identifier{live}.Sanitize() + ` INCLUDING ALL)`
}

// ProjectionSwapTables are the statements, in order, that put copyTable in the place of live:
// live is renamed to old, copyTable to live, and old is dropped.
func ProjectionSwapTables(live, copyTable, old string) []string {
	l, o := pgx.Identifier{live}.Sanitize(), pgx.Identifier{old}.Sanitize()
	return []string{
		`ALTER TABLE ` + l + ` RENAME TO ` + o,
		`ALTER TABLE ` + pgx.Identifier{copyTable}.Sanitize() + ` RENAME TO ` + l,
		`DROP TABLE ` + o,
	}
}

// ProjectionRenameConstraint renames constraint from of schema.table to to.
func ProjectionRenameConstraint(schema, table, from, to string) string {
	return `ALTER TABLE ` + pgx.Identifier{schema, table}.Sanitize() + ` RENAME CONSTRAINT ` + pgx.Identifier{from}.Sanitize() + ` TO ` + pgx.Identifier{to}.Sanitize()
}

// ProjectionRenameIndex renames index schema.from to to.
func ProjectionRenameIndex(schema, from, to string) string {
	return `ALTER INDEX ` + pgx.Identifier{schema, from}.Sanitize() + ` RENAME TO ` + pgx.Identifier{to}.Sanitize()
}
