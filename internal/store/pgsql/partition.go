package pgsql

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Statements of partition.sql.
var (
	// PartitionLock takes, for the transaction, the one advisory lock that makes, detaches,
	// attaches again, drops and restores partitions one at a time.
	PartitionLock = get("PartitionLock")
	// PartitionList lists every partition of events, attached or detached: its table name and
	// whether it is attached, in order of name (so of range).
	PartitionList = get("PartitionList")
	// PartitionNext reads the position the next append draws, at least.
	PartitionNext = get("PartitionNext")
	// PartitionMake makes and attaches the partition [$1, $2) (strata_make_event_partition).
	PartitionMake = get("PartitionMake")
	// PartitionDetachLockTimeout sets, for the transaction, how long DETACH PARTITION waits for
	// its lock on events.
	PartitionDetachLockTimeout = get("PartitionDetachLockTimeout")
	// PartitionDropEventIDs deletes the event ids of the positions [$1, $2), an archived
	// partition's.
	PartitionDropEventIDs = get("PartitionDropEventIDs")
	// PartitionRestoreEventIDs records again the event ids of the events at positions
	// [$1, $2), a restored partition's.
	PartitionRestoreEventIDs = get("PartitionRestoreEventIDs")
)

// The statements on one partition's table, named table (as partition.Name makes it): they
// cannot be named statements, since no partition exists before one is made.

// partitionTable is a partition's name quoted as an identifier.
func partitionTable(table string) string { return pgx.Identifier{table}.Sanitize() }

// PartitionCount counts the rows of the partition table.
func PartitionCount(table string) string {
	return fmt.Sprintf("SELECT count(*) FROM %s", partitionTable(table))
}

// PartitionLastEvent reads the transaction id and position of the last event of the partition
// table in the global order; no row when it is empty.
func PartitionLastEvent(table string) string {
	return `SELECT transaction_id, position FROM ` + partitionTable(table) + ` ORDER BY transaction_id DESC, position DESC LIMIT 1`
}

// PartitionLastRecordedAt reads when the last event of the partition table was recorded; NULL
// when it is empty.
func PartitionLastRecordedAt(table string) string {
	return `SELECT max(recorded_at) FROM ` + partitionTable(table)
}

// PartitionDetach detaches the partition table from events.
func PartitionDetach(table string) string {
	return "ALTER TABLE events DETACH PARTITION " + partitionTable(table)
}

// PartitionAttach attaches the partition table to events again, as the range [first, end).
func PartitionAttach(table string, first, end int64) string {
	return fmt.Sprintf("ALTER TABLE events ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)", partitionTable(table), first, end)
}

// PartitionDrop drops the partition table.
func PartitionDrop(table string) string {
	return "DROP TABLE " + partitionTable(table)
}

// partitionArchiveColumns are the columns of an event an archive keeps: every one a restore
// needs to put the event back exactly.
const partitionArchiveColumns = `position, transaction_id, event_id::text, stream_id, version, type, schema_version, data, metadata, recorded_at, tags`

// PartitionArchiveRead reads every event of the partition tables, detached, in the global
// order: position, transaction_id, event_id (as text), stream_id, version, type,
// schema_version, data, metadata, recorded_at, tags.
func PartitionArchiveRead(tables []string) string {
	parts := make([]string, 0, len(tables))
	for _, table := range tables {
		parts = append(parts, "SELECT "+partitionArchiveColumns+" FROM "+partitionTable(table))
	}
	return strings.Join(parts, "\nUNION ALL\n") + "\nORDER BY transaction_id, position"
}
