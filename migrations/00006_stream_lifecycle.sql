-- Stream lifecycle (docs/design.md, "Stream lifecycle"): soft deletion, and the settings that
-- hide a stream's older events (truncateBefore, maxAge, maxCount) until the scavenger deletes
-- them. Settings live in streams.metadata, the column reserved for them:
--   {"truncateBefore": N, "maxAge": seconds, "maxCount": N}
-- A deleted stream's last event is its tombstone ($StreamDeleted); deleted_version holds that
-- version until the stream is recreated.

-- +goose Up
ALTER TABLE streams ADD COLUMN deleted_version bigint;
-- A deleted stream's version is frozen at its tombstone: any append to it (whichever statement
-- writes it, lone or group commit) fails this check, and the store answers STREAM_DELETED.
-- Recreating clears deleted_version in the same transaction as the append.
ALTER TABLE streams ADD CONSTRAINT streams_deleted_check
    CHECK (deleted_version IS NULL OR deleted_version = version);
-- The scavenger's list of streams that may hide events. Appends change neither column of the
-- predicate, so they stay HOT updates.
CREATE INDEX streams_lifecycle_idx ON streams (stream_id)
    WHERE metadata <> '{}'::jsonb OR deleted_version IS NOT NULL;

-- +goose Down
DROP INDEX streams_lifecycle_idx;
ALTER TABLE streams DROP CONSTRAINT streams_deleted_check;
ALTER TABLE streams DROP COLUMN deleted_version;
