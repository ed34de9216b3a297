-- The projectors (internal/runtime/projection): their checkpoints, the snapshots a read model
-- starts from, and the rebuilds. Statements on a read model's table, whose name varies (the live
-- table or a rebuild's copy), are built by the functions of projection.go.

-- name: ProjectionSnapshot
-- The state of stream $1's snapshot at version $2, of shape $3 (the aggregate's current one):
-- where the row of a truncated stream starts.
SELECT state FROM snapshots WHERE stream_id = $1 AND version = $2 AND shape = $3

-- name: ProjectionLiveAndCopyCheckpoints
-- The positions of checkpoints $1 (the live table's) and $2 (a rebuild's copy's).
SELECT (SELECT position FROM projection_checkpoints WHERE name = $1), (SELECT position FROM projection_checkpoints WHERE name = $2)

-- name: ProjectionTryRebuildLock
-- A session advisory lock of class Rebuild marks a running rebuild, one per projection ($1).
SELECT pg_try_advisory_lock({{Rebuild}}, hashtext($1))

-- name: ProjectionRebuildUnlock
SELECT pg_advisory_unlock({{Rebuild}}, hashtext($1))

-- name: ProjectionResetCheckpoint
-- A rebuild's checkpoint $1 at the start of the log, whether or not a rebuild that died left it.
INSERT INTO projection_checkpoints (name) VALUES ($1)
ON CONFLICT (name) DO UPDATE SET position = '', skipped = 0, updated_at = now()

-- name: ProjectionTakeCheckpoint
-- The live checkpoint $1 takes the position and the skipped count of the rebuild's checkpoint $2,
-- when the copy is swapped in.
UPDATE projection_checkpoints AS l SET position = c.position, skipped = c.skipped, updated_at = now()
FROM projection_checkpoints AS c WHERE l.name = $1 AND c.name = $2

-- name: ProjectionDeleteCheckpoint
DELETE FROM projection_checkpoints WHERE name = $1

-- name: ProjectionIndexesAndConstraints
-- The indexes and constraints of tables $1 (live) and $2 (its copy) in the current schema, each
-- with a key that is the same for an index or constraint of the live table and its copy by
-- CREATE TABLE ... (LIKE ... INCLUDING ALL): what it is, without its name or its table's. An
-- index's key is built from the catalog rather than from pg_get_indexdef's text, which holds
-- both names; its columns are by name (a live table with dropped columns numbers them
-- differently from its copy). Constraints that own an index (primary key, unique, exclusion)
-- are renamed with it, so they come as part of the index's key.
SELECT n.nspname, c.relname = $2, false, ic.relname,
  ROW(am.amname, x.indisunique, x.indisprimary, x.indisexclusion,
    to_jsonb(x) -> 'indnullsnotdistinct', x.indnkeyatts, x.indclass::text, x.indcollation::text,
    x.indoption::text, ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, false) FROM generate_series(1, x.indnatts) AS k ORDER BY k),
    pg_get_expr(x.indpred, x.indrelid), ic.reloptions, con.contype, pg_get_constraintdef(con.oid))::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_index x ON x.indrelid = c.oid
JOIN pg_class ic ON ic.oid = x.indexrelid
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = c.oid AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = current_schema() AND c.relname IN ($1, $2)
UNION ALL
SELECT n.nspname, c.relname = $2, true, con.conname, ROW(con.contype, pg_get_constraintdef(con.oid))::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_constraint con ON con.conrelid = c.oid
WHERE n.nspname = current_schema() AND c.relname IN ($1, $2) AND con.contype NOT IN ('p', 'u', 'x')
