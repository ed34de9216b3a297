package pgsql

// Statements of checkpoints.sql.
var (
	CheckpointsApplied = get("CheckpointsApplied")
)
