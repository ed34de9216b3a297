-- The event store: one append-only log of immutable events and one row per stream.
-- See docs/design.md for why the log is ordered by (transaction_id, position).

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
    position       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX events_global_order_idx ON events (transaction_id, position);
CREATE INDEX events_type_idx ON events (type, transaction_id, position);
CREATE INDEX events_category_idx ON events (category, transaction_id, position);

-- strata_append appends events to one stream in the calling statement's transaction, so a call
-- commits whole or not at all. p_expected NULL means "any version", 0 "the stream must not exist",
-- N "the stream must be at version N". It returns ok = false with the stream's actual version on
-- a mismatch, having written nothing.
--
-- Appends to one stream queue on a transaction-scoped advisory lock keyed by the stream, taken
-- before the transaction writes anything: a transaction gets its id at its first write, so the
-- lock holder's id is always older than the id of any later append to the same stream, and the
-- global (transaction_id, position) order keeps each stream's events in version order. A row
-- lock on streams would not do: a transaction takes its id before it waits for a row lock, so the
-- waiter could hold the older id and read first. It must therefore be the first write of its
-- transaction. Appends to different streams never wait for each other (but for the rare hash
-- collision, which only makes two appends take turns).
-- +goose StatementBegin
CREATE FUNCTION strata_append(
    p_stream_id       text,
    p_expected        bigint,
    p_event_ids       uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_data            jsonb[],
    p_metadata        jsonb[],
    OUT ok             boolean,
    OUT version        bigint,
    OUT transaction_id xid8,
    OUT positions      bigint[],
    OUT recorded_at    timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    n      bigint := cardinality(p_event_ids);
    v_prev bigint;
BEGIN
    -- 1398031425 is Strata's class of advisory locks ("SSTA"); stream locks are (class, hash).
    PERFORM pg_advisory_xact_lock(1398031425, hashtext(p_stream_id));

    SELECT s.version INTO v_prev FROM streams s WHERE s.stream_id = p_stream_id;
    IF p_expected IS NOT NULL AND coalesce(v_prev, 0) <> p_expected THEN
        ok := false;
        version := coalesce(v_prev, 0);
        RETURN;
    END IF;
    IF v_prev IS NULL THEN
        v_prev := 0;
        INSERT INTO streams (stream_id, version) VALUES (p_stream_id, n);
    ELSE
        UPDATE streams s SET version = s.version + n, updated_at = now()
        WHERE s.stream_id = p_stream_id AND s.version = v_prev;
        IF NOT FOUND THEN -- only a writer that bypassed this function can get here
            RAISE EXCEPTION 'stream % changed during an append', p_stream_id USING ERRCODE = 'serialization_failure';
        END IF;
    END IF;

    WITH inserted AS (
        INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata)
        SELECT e.event_id, p_stream_id, v_prev + e.ord, e.type, e.schema_version, e.data, e.metadata
        FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS e(event_id, type, schema_version, data, metadata, ord)
        RETURNING events.position, events.version
    )
    SELECT array_agg(i.position ORDER BY i.version) INTO positions FROM inserted i;

    ok := true;
    version := v_prev + n;
    transaction_id := pg_current_xact_id();
    recorded_at := now();
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION strata_append(text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]);
DROP TABLE events;
DROP TABLE streams;
