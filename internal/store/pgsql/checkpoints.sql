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
