-- The events table's partitions (internal/store/partition): making them ahead of the appends,
-- listing them, archiving old ones and restoring them. Partitions are ranges of positions,
-- [first, end), made by strata_make_event_partition (migrations/00004_partitioned_events.sql).
-- Statements on one partition's table are built by the functions of partition.go, which quote
-- its name.

-- name: PartitionLock
-- The advisory lock that makes, detaches, drops and restores partitions one at a time: two
-- servers making partitions ahead at once, or an archive and a restore, would otherwise race
-- for the same ranges. Its class is its own, so that no stream's append lock is ever the same
-- lock.
SELECT pg_advisory_xact_lock({{Partitions}}, {{PartitionsKey}})

-- name: PartitionList
-- Every partition of events by its name, attached or detached, in the schema events lives in.
SELECT c.relname,
	EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid AND i.inhparent = 'events'::regclass)
FROM pg_class c
WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'events'::regclass)
  AND c.relkind = 'r' AND c.relname ~ '^events_p[0-9]{19}_[0-9]{19}$'
ORDER BY c.relname

-- name: PartitionNext
-- The position the next append draws (at least).
SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM events_position_seq

-- name: PartitionMake
SELECT strata_make_event_partition($1, $2)

-- name: PartitionDetachLockTimeout
-- Bounds the wait for the lock DETACH PARTITION takes on events; appends queue behind a waiting
-- DETACH, so it must not wait long. internal/store/partition names the same time in its errors
-- (detachTimeout), and a test there keeps the two equal.
SET LOCAL lock_timeout = '3s'

-- name: PartitionDropEventIDs
-- event_ids has no index on position (it would cost every append), so this scans it once per
-- archived partition.
DELETE FROM event_ids WHERE position >= $1 AND position < $2

-- name: PartitionRestoreEventIDs
-- Records the event ids of the restored events again; an id stored again since the archive was
-- made violates event_ids_pkey.
INSERT INTO event_ids (event_id, transaction_id, position)
SELECT event_id, transaction_id, position FROM events WHERE position >= $1 AND position < $2
