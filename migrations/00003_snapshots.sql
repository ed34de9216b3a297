-- Snapshots of aggregate state, an optimisation only: deleting them changes no answer.
-- Written by the command layer outside any append transaction (internal/runtime/command/snapshot.go).

-- +goose Up
CREATE TABLE snapshots (
    stream_id  text        NOT NULL,
    -- the version of the stream's last event folded into state
    version    bigint      NOT NULL CHECK (version > 0),
    -- the version of the aggregate's state shape; a snapshot of another shape is ignored
    shape      int         NOT NULL,
    state      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);

-- +goose Down
DROP TABLE snapshots;
