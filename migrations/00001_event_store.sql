-- The event store: one append-only log of immutable events and one row per stream.
-- See docs/design.md for why the log is ordered by (transaction_id, position), and
-- internal/store/eventstore/append.go for the one statement that writes both tables.

-- +goose Up
CREATE TABLE streams (
    stream_id  text        PRIMARY KEY,
    -- version of the stream's last event; 0 never persists (a stream exists once it has an event)
    version    bigint      NOT NULL CHECK (version >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- reserved for stream metadata (max age, max count, ...) in later migrations
    metadata   jsonb       NOT NULL DEFAULT '{}'
) WITH (fillfactor = 80); -- room for HOT updates of version/updated_at

CREATE TABLE events (
    -- handed out by a sequence: unique, but NOT in commit order; never read in this order alone
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    -- the appending transaction's id; rows are read in (transaction_id, position) order and only
    -- below the reader's snapshot xmin, where every transaction has ended (docs/design.md)
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    -- the part of the stream id before the first '-': order-123 belongs to category order
    category       text        NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    version        bigint      NOT NULL CHECK (version >= 1),
    type           text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
    data           jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    metadata       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- the global order; also the primary key, so it costs no index of its own
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX events_type_idx ON events (type, transaction_id, position);
CREATE INDEX events_category_idx ON events (category, transaction_id, position);


-- +goose Down
DROP TABLE events;
DROP TABLE streams;
