-- The checkpoints of the projectors (internal/runtime/projection), as the scavenger and the
-- archiver read them: how far the read models that need an event have applied.

-- name: CheckpointsApplied
-- The oldest checkpoint of the projectors that read category $1 (or every category: a NULL
-- category), and whether there is any checkpoint at all.
SELECT count(*) > 0, min(position COLLATE "C") FILTER (WHERE category IS NULL OR category = $1)
FROM projection_checkpoints
