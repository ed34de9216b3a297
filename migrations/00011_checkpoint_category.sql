-- The category of events a checkpoint's projector reads, written by the projector when it
-- starts (internal/runtime/projection). The scavenger and the archiver wait only for the
-- projectors that read an event's category: a projector that has had nothing of its own to
-- apply for a while need not move its checkpoint on every append of every other category. NULL
-- means every category, or not yet known: such a checkpoint holds back every deletion, as all
-- of them did before.

-- +goose Up
ALTER TABLE projection_checkpoints ADD COLUMN category text;

-- +goose Down
ALTER TABLE projection_checkpoints DROP COLUMN category;
