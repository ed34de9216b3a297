-- The checkpoints of the projectors (internal/runtime/projection), as the scavenger and the
-- archiver read them: how far the read models that need an event have applied.

-- name: CheckpointsApplied
-- The oldest checkpoint of the projectors that read category $1 (or every category: a NULL
-- category), and whether there is any checkpoint at all.
SELECT count(*) > 0, min(position COLLATE "C") FILTER (WHERE category IS NULL OR category = $1)
FROM projection_checkpoints

-- name: CheckpointsSetCategory
-- Records that checkpoint $1's projector reads category $2 ('' for every category: NULL).
UPDATE projection_checkpoints SET category = NULLIF($2, '')
WHERE name = $1 AND category IS DISTINCT FROM NULLIF($2, '')

-- name: CheckpointsAll
-- Every checkpoint, its category (NULL: every category, or not known) and position, in the
-- order of their positions.
SELECT name, category, position FROM projection_checkpoints ORDER BY position COLLATE "C", name

-- name: CheckpointsLock
-- Takes the lock of checkpoint $1 for the transaction: batches of one checkpoint never overlap,
-- even under a stale leader.
SELECT pg_advisory_xact_lock({{Checkpoint}}, hashtext($1))

-- name: CheckpointsRead
SELECT position FROM projection_checkpoints WHERE name = $1

-- name: CheckpointsReadWithHorizon
-- Checkpoint $1 with the horizon (eventstore.HorizonOf) of the statement's snapshot.
SELECT position, pg_snapshot_xmin(pg_current_snapshot()) FROM projection_checkpoints WHERE name = $1

-- name: CheckpointsMoveIdle
-- Moves checkpoint $1 from $2 to $3 when no other process moved it meanwhile.
UPDATE projection_checkpoints SET position = $3, updated_at = now() WHERE name = $1 AND position = $2

-- name: CheckpointsMove
-- Moves checkpoint $1 to $2, counting $3 more events skipped.
UPDATE projection_checkpoints SET position = $2, skipped = skipped + $3, updated_at = now() WHERE name = $1

-- name: CheckpointsStatus
-- Checkpoint $1's position, skipped count and time, and whether a rebuild of projection $1 holds
-- its lock in this database now.
SELECT position, skipped, updated_at,
	EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = {{Rebuild}} AND objid = hashtext($1)::oid AND objsubid = 2 AND granted)
FROM projection_checkpoints WHERE name = $1
