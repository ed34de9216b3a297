-- A count of the events applied to each read-model row. It equals the row's version unless
-- some of its stream's events were skipped or of a type the projection ignores; above the
-- version, it would show an event applied twice, which the checkpoint rules out and the
-- several-replicas test checks.

-- +goose Up
ALTER TABLE users ADD COLUMN applied bigint NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN applied bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE orders DROP COLUMN applied;
ALTER TABLE users DROP COLUMN applied;
