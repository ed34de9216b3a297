-- The benchmarks' own statements (internal/transport/benchcmd), run on a scratch database:
-- checking what a benchmark wrote, and filling the log with SQL for `strata bench stats`.

-- name: BenchShippedOrders
-- The shipped orders of the orders projection, once `strata bench project` has rebuilt it.
SELECT count(*) FROM orders WHERE status = 'SHIPPED'

-- name: BenchStatsIndex
-- Migration 8's index; `strata bench stats` drops it (BenchStatsDropIndex) while it fills the
-- log, then builds it again with this, timed, as a migration would build it on an existing log.
CREATE INDEX events_recorded_at_idx ON events (recorded_at) INCLUDE (category, type, transaction_id)

-- name: BenchStatsDropIndex
DROP INDEX events_recorded_at_idx

-- name: BenchVacuum
VACUUM ANALYZE events

-- name: BenchStatsCount
-- The events recorded in [$1, $2), and those of them of category order, by a plain count(*),
-- to check the statistics against.
SELECT count(*), count(*) FILTER (WHERE category = 'order') FROM events WHERE recorded_at >= $1 AND recorded_at < $2

-- name: BenchStatsPartitions
-- Makes the partitions of 1000000 positions that $1 more events need, past the sequence's last
-- value, that do not exist yet.
SELECT strata_make_event_partition(p * 1000000, (p + 1) * 1000000)
FROM generate_series(0, ($1::bigint + (SELECT last_value FROM events_position_seq)) / 1000000 + 1) p
WHERE to_regclass(format('events_p%s_%s', lpad((p * 1000000)::text, 19, '0'), lpad(((p + 1) * 1000000)::text, 19, '0'))) IS NULL

-- name: BenchStatsInsert
-- Inserts the events numbered $1 to $2 (included) of $5, recorded evenly over [$3, $4): four
-- categories, ten types, streams of ten events. The ids go to event_ids in the same statement,
-- as the store's appends do.
WITH ins AS (
	INSERT INTO events (event_id, stream_id, version, type, data, recorded_at)
	SELECT gen_random_uuid(), (ARRAY['order', 'user', 'payment', 'audit'])[1 + i % 4] || '-' || (i / 40),
		1 + (i / 4) % 10, 'Type' || (i % 10), jsonb_build_object('n', i, 'note', repeat('x', 100)),
		$3::timestamptz + (i * ($4::timestamptz - $3::timestamptz) / $5::bigint)
	FROM generate_series($1::bigint, $2::bigint) i
	RETURNING event_id, transaction_id, position)
INSERT INTO event_ids (event_id, transaction_id, position) SELECT event_id, transaction_id, position FROM ins

-- name: BenchClearStatsSnapshot
-- Drops this session's cached statistics snapshot, so that the next read of pg_stat_database
-- sees what the backends have flushed since (`strata bench graphql`'s costs per append).
SELECT pg_stat_clear_snapshot()

-- name: BenchXactCommits
-- The transactions committed so far in database $1, as its backends have flushed them (at most
-- once a second each, in PostgreSQL 15).
SELECT xact_commit FROM pg_stat_database WHERE datname = $1

-- name: BenchBackends
-- The process ids of the backends connected to database $1 (autovacuum's among them), whose CPU
-- time the benchmark reads from /proc.
SELECT pid FROM pg_stat_activity WHERE datname = $1
