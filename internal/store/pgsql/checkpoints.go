package pgsql

import "github.com/jackc/pgx/v5"

// Statements of checkpoints.sql.
var (
	// CheckpointsApplied reads, for category $1, whether any checkpoint exists and the oldest
	// position of those whose projector reads the category or every category.
	CheckpointsApplied = get("CheckpointsApplied")
	// CheckpointsSetCategory records the category ($2, '' for every one) of checkpoint $1.
	CheckpointsSetCategory = get("CheckpointsSetCategory")
	// CheckpointsAll reads every checkpoint: name, category, position.
	CheckpointsAll = get("CheckpointsAll")
)

// CheckpointsPartitionLast reads the last event (transaction_id, position) of the events table's
// partition called partition; with byCategory, the last of category $1.
func CheckpointsPartitionLast(partition string, byCategory bool) string {
	where := ""
	if byCategory {
		where = " WHERE category = $1"
	}
	return "SELECT transaction_id, position FROM " + pgx.Identifier{partition}.Sanitize() + where +
		" ORDER BY transaction_id DESC, position DESC LIMIT 1"
}
