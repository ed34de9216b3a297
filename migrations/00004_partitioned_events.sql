-- The events table, partitioned by ranges of position, so that old partitions can be detached,
-- archived and dropped without rewriting anything (docs/design.md, "Partitions and archives").
-- Existing rows move into the new table with their positions and transaction ids unchanged.
--
-- What partitioning changes:
--   * position is drawn from a sequence of its own: an identity column is not inherited by the
--     partitions in PostgreSQL 15, and a restore must write positions back as they were.
--   * A unique constraint of a partitioned table must include the partition key, so event ids
--     are unique in a table of their own, event_ids, filled by every statement that appends;
--     its primary key is what an idempotent retry runs into. Archiving a partition prunes its ids.
--   * (stream_id, version) is unique per partition (an index each partition gets when it is
--     made); across partitions the per-stream advisory lock and the streams row guarantee it,
--     as they always did.
-- Partitions are named events_p<first position>_<end position>, both 19 digits, the end
-- excluded; strata_make_event_partition makes one the way every later one is made.

-- +goose Up
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_event_id_key TO events_unpartitioned_event_id_key;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_stream_version_key TO events_unpartitioned_stream_version_key;
ALTER INDEX events_type_idx RENAME TO events_unpartitioned_type_idx;
ALTER INDEX events_category_idx RENAME TO events_unpartitioned_category_idx;
ALTER SEQUENCE events_position_seq RENAME TO events_unpartitioned_position_seq;

-- The next position continues where the identity column stopped.
CREATE SEQUENCE events_position_seq AS bigint;
SELECT setval('events_position_seq', last_value, is_called) FROM events_unpartitioned_position_seq;

CREATE TABLE events (
    -- handed out by a sequence: unique, but NOT in commit order; never read in this order alone
    position       bigint      NOT NULL DEFAULT nextval('events_position_seq'),
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
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position)
) PARTITION BY RANGE (position);
ALTER SEQUENCE events_position_seq OWNED BY events.position;

CREATE INDEX events_type_idx ON events (type, transaction_id, position);
CREATE INDEX events_category_idx ON events (category, transaction_id, position);

-- Every stored event id, with where its event is. The primary key is the global uniqueness of
-- event ids that events can no longer hold; the store recognises its name (event_ids_pkey).
-- Every statement that inserts events inserts their ids here too, in a CTE of the same
-- statement (internal/store/eventstore): a row trigger did the same at three times the cost.
CREATE TABLE event_ids (
    event_id       uuid   NOT NULL,
    transaction_id xid8   NOT NULL,
    position       bigint NOT NULL,
    CONSTRAINT event_ids_pkey PRIMARY KEY (event_id)
);

-- strata_make_event_partition makes and attaches the partition [first, stop) and returns its
-- name. The table is made on its own and attached, which locks events only in SHARE UPDATE
-- EXCLUSIVE mode: appends and reads go on meanwhile (CREATE TABLE ... PARTITION OF would lock
-- them out). The CHECK constraint lets ATTACH skip its scan, and keeps the range on the table
-- while it is detached.
-- +goose StatementBegin
CREATE FUNCTION strata_make_event_partition(first bigint, stop bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('events_p%s_%s', lpad(first::text, 19, '0'), lpad(stop::text, 19, '0'));
BEGIN
    IF first < 0 OR stop <= first THEN
        RAISE EXCEPTION 'event partition [%, %) is empty or negative', first, stop;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS)', name);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (position >= %s AND position < %s)', name, name || '_range', first, stop);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I (stream_id, version)', name || '_stream_version', name);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, first, stop);
    RETURN name;
END
$$;
-- +goose StatementEnd

-- Partitions of 1,000,000 positions (the default --partition-size) from 0 to two past the next
-- position; the server keeps making them ahead from there.
SELECT strata_make_event_partition(n * 1000000, (n + 1) * 1000000)
FROM generate_series(0, (SELECT (CASE WHEN is_called THEN last_value + 1 ELSE last_value END) / 1000000 + 2 FROM events_position_seq)) AS n;

INSERT INTO events (position, transaction_id, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at)
SELECT position, transaction_id, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at
FROM events_unpartitioned;
INSERT INTO event_ids (event_id, transaction_id, position)
SELECT event_id, transaction_id, position FROM events_unpartitioned;

DROP TABLE events_unpartitioned;

-- +goose Down
ALTER TABLE events RENAME TO events_partitioned;
ALTER TABLE events_partitioned RENAME CONSTRAINT events_pkey TO events_partitioned_pkey;
ALTER INDEX events_type_idx RENAME TO events_partitioned_type_idx;
ALTER INDEX events_category_idx RENAME TO events_partitioned_category_idx;
ALTER SEQUENCE events_position_seq RENAME TO events_partitioned_position_seq;

CREATE TABLE events (
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    category       text        NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    version        bigint      NOT NULL CHECK (version >= 1),
    type           text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
    data           jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    metadata       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);
CREATE INDEX events_type_idx ON events (type, transaction_id, position);
CREATE INDEX events_category_idx ON events (category, transaction_id, position);

INSERT INTO events (position, transaction_id, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at)
OVERRIDING SYSTEM VALUE
SELECT position, transaction_id, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at
FROM events_partitioned;
SELECT setval(pg_get_serial_sequence('events', 'position'), last_value, is_called) FROM events_partitioned_position_seq;

DROP TABLE events_partitioned;
DROP TABLE event_ids;
DROP FUNCTION strata_make_event_partition(bigint, bigint);
