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
	// CheckpointsLock takes the transaction's lock of checkpoint $1.
	CheckpointsLock = get("CheckpointsLock")
	// CheckpointsRead reads the position of checkpoint $1.
	CheckpointsRead = get("CheckpointsRead")
	// CheckpointsReadWithHorizon reads the position of checkpoint $1 and the snapshot's xmin.
	CheckpointsReadWithHorizon = get("CheckpointsReadWithHorizon")
	// CheckpointsMoveIdle moves checkpoint $1 from $2 to $3, if it is still at $2.
	CheckpointsMoveIdle = get("CheckpointsMoveIdle")
	// CheckpointsMove moves checkpoint $1 to $2 and adds $3 to its skipped events.
	CheckpointsMove = get("CheckpointsMove")
	// CheckpointsStatus reads checkpoint $1 (position, skipped, updated_at) and whether its
	// projection is being rebuilt.
	CheckpointsStatus = get("CheckpointsStatus")
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
