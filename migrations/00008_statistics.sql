-- Statistics (docs/design.md, "Statistics"): an index that lets eventStats count a time range
-- of events from the index alone, and the order_stats read model (internal/runtime/projection/orderstats.go).

-- +goose Up

-- eventStats groups the events of [from, to) by time bucket and type, optionally of one
-- category, below the global-order horizon (transaction_id): every column it reads is in the
-- index, so a month of events is counted by an index-only scan, never touching the rows'
-- payloads. Made on the partitioned table, the index is made on every partition, and on every
-- later one as strata_make_event_partition attaches it (ATTACH PARTITION builds a partition's
-- missing indexes of the parent). recorded_at grows with time, so inserts land at the
-- index's right edge. This locks appends while it builds on existing events (about 3 s for a
-- million on the benchmark machine, docs/benchmarks.md).
CREATE INDEX events_recorded_at_idx ON events (recorded_at) INCLUDE (category, type, transaction_id);

-- One row per order: when it was created, paid (and how much), shipped or cancelled, each the
-- recorded_at of the event that did it. orderStats aggregates it per UTC day at query time.
CREATE TABLE order_stats (
    id           uuid        PRIMARY KEY,
    created_at   timestamptz NOT NULL,
    paid_at      timestamptz,
    amount_paid  bigint      NOT NULL DEFAULT 0, -- minor units
    shipped_at   timestamptz,
    cancelled_at timestamptz,
    version      bigint      NOT NULL,
    position     text        NOT NULL, -- of the last event applied
    applied      bigint      NOT NULL DEFAULT 0
);
CREATE INDEX order_stats_created_at ON order_stats (created_at);
CREATE INDEX order_stats_paid_at ON order_stats (paid_at) INCLUDE (amount_paid) WHERE paid_at IS NOT NULL;
CREATE INDEX order_stats_shipped_at ON order_stats (shipped_at) INCLUDE (created_at) WHERE shipped_at IS NOT NULL;
CREATE INDEX order_stats_cancelled_at ON order_stats (cancelled_at) WHERE cancelled_at IS NOT NULL;

INSERT INTO projection_checkpoints (name) VALUES ('order_stats');

-- +goose Down
DELETE FROM projection_checkpoints WHERE name IN ('order_stats', 'order_stats.rebuild');
DROP TABLE order_stats;
DROP INDEX events_recorded_at_idx;
