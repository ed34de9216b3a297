-- The event store (internal/store/eventstore): appends, alone, grouped and across streams; the
-- streams' lifecycle; personal data's keys; reads of a stream and of the global order; snapshots;
-- statistics and the list of streams. eventstore.go says what each statement does and takes.

-- An append is its stream's part (the lock, then the streams row written for the expected
-- version), then its events' part (one event, or many); a statement per pair.

-- fragment: AppendLocks
-- The stream's lock, then a shared lock on each type and tag of the events ($10: "t:" type and
-- "g:" tag, docs/consistency.md), so that a conditional append whose condition could match them
-- waits for this one. Each key lock is taken on a row joined with lock's, so after it, whatever
-- order the planner joins them in; keys in order, as every append takes them.
WITH lock AS (SELECT pg_advisory_xact_lock({{Stream}}, hashtext($1))),
keys AS (
	SELECT count(pg_advisory_xact_lock_shared({{Match}}, k.k)) AS n
	FROM lock, (SELECT DISTINCT hashtext(x) AS k FROM unnest($10::text[]) AS x ORDER BY 1) AS k
),

-- fragment: AppendToAny
stream AS (
	INSERT INTO streams AS s (stream_id, version) SELECT $1, $3 FROM lock, keys WHERE $2::bigint IS NULL
	ON CONFLICT (stream_id) DO UPDATE SET version = s.version + $3, updated_at = now()
	RETURNING s.version - $3 AS prev
),

-- fragment: AppendToNew
stream AS (
	INSERT INTO streams AS s (stream_id, version) SELECT $1, $3 FROM lock, keys WHERE $2::bigint = 0
	RETURNING 0::bigint AS prev
),

-- fragment: AppendAtVersion
stream AS (
	UPDATE streams AS s SET version = s.version + $3, updated_at = now()
	FROM lock, keys WHERE s.stream_id = $1 AND s.version = $2
	RETURNING s.version - $3 AS prev
),

-- fragment: AppendOne
ins AS (
	INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata, tags)
	SELECT $4, $1, stream.prev + 1, $5, $6, $7, $8, $9::text[] FROM stream
	RETURNING event_id, version, transaction_id, position, recorded_at
), ids AS (
	INSERT INTO event_ids (event_id, transaction_id, position) SELECT event_id, transaction_id, position FROM ins
)
SELECT version, transaction_id, ARRAY[position], recorded_at FROM ins

-- fragment: AppendMany
inserted AS (
	INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata, tags)
	SELECT e.event_id, $1, stream.prev + e.ord, e.type, e.schema_version, e.data, e.metadata, string_to_array(e.tags, E'\x1f')
	FROM stream, unnest($4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::text[])
	     WITH ORDINALITY AS e(event_id, type, schema_version, data, metadata, tags, ord)
	ORDER BY e.ord -- positions are drawn in this order, so they follow the versions
	RETURNING event_id, version, transaction_id, position, recorded_at
), ids AS (
	INSERT INTO event_ids (event_id, transaction_id, position) SELECT event_id, transaction_id, position FROM inserted
)
SELECT min(version), (array_agg(transaction_id))[1], array_agg(position ORDER BY version), min(recorded_at) FROM inserted

-- name: EventstoreAppendOneToAny
{{AppendLocks}}
{{AppendToAny}}
{{AppendOne}}

-- name: EventstoreAppendManyToAny
{{AppendLocks}}
{{AppendToAny}}
{{AppendMany}}

-- name: EventstoreAppendOneToNew
{{AppendLocks}}
{{AppendToNew}}
{{AppendOne}}

-- name: EventstoreAppendManyToNew
{{AppendLocks}}
{{AppendToNew}}
{{AppendMany}}

-- name: EventstoreAppendOneAtVersion
{{AppendLocks}}
{{AppendAtVersion}}
{{AppendOne}}

-- name: EventstoreAppendManyAtVersion
{{AppendLocks}}
{{AppendAtVersion}}
{{AppendMany}}

-- name: EventstoreStreamVersion
SELECT coalesce((SELECT version FROM streams WHERE stream_id = $1), 0)

-- name: EventstoreRepeated
SELECT i.ord, e.stream_id, e.version, e.transaction_id, e.position, e.recorded_at,
       e.type = i.type AND e.schema_version = i.schema_version AND e.data = i.data AND e.metadata = i.metadata
       AND e.tags IS NOT DISTINCT FROM string_to_array(i.tags, E'\x1f')
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::jsonb[], $5::jsonb[], $6::text[])
     WITH ORDINALITY AS i(event_id, type, schema_version, data, metadata, tags, ord)
JOIN event_ids x ON x.event_id = i.event_id
JOIN events e ON (e.transaction_id, e.position) = (x.transaction_id, x.position)
ORDER BY i.ord

-- name: EventstoreGroupBegin
BEGIN

-- name: EventstoreGroupLock
-- The streams' locks in byte order of their ids, then the consistency-boundary locks in key
-- order as EventstoreGroupKeys takes them ($2 shared, $3 exclusive): one statement, the rows
-- sorted so that the locks are taken in that order.
SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	count(CASE WHEN l.stream IS NOT NULL THEN pg_advisory_xact_lock({{Stream}}, hashtext(l.stream))
		WHEN l.x THEN pg_advisory_xact_lock({{Match}}, l.k)
		ELSE pg_advisory_xact_lock_shared({{Match}}, l.k) END)
FROM (
	SELECT 0 AS step, s COLLATE "C" AS stream, 0 AS k, false AS x FROM (SELECT DISTINCT s FROM unnest($1::text[]) AS s) AS streams
	UNION ALL
	SELECT 1, NULL, hashtext(u.s), bool_or(u.x)
	FROM (SELECT s, false AS x FROM unnest($2::text[]) AS s UNION ALL SELECT s, true FROM unnest($3::text[]) AS s) AS u
	GROUP BY 3
	ORDER BY 1, 2, 3
) AS l

-- name: EventstoreLockStreams
SELECT count(pg_advisory_xact_lock({{Stream}}, hashtext(s)))
FROM (SELECT DISTINCT s COLLATE "C" AS s FROM unnest($1::text[]) AS s ORDER BY 1) AS streams

-- name: EventstoreGroupKeys
-- After the streams' locks: the consistency-boundary locks of a batch or of a conditional
-- append, in key order, shared for the types and tags its events carry ($1), exclusive for the
-- keys its condition could match ($2); a key in both is taken exclusive.
SELECT count(CASE WHEN k.x THEN pg_advisory_xact_lock({{Match}}, k.k) ELSE pg_advisory_xact_lock_shared({{Match}}, k.k) END)
FROM (
	SELECT hashtext(u.s) AS k, bool_or(u.x) AS x
	FROM (SELECT s, false AS x FROM unnest($1::text[]) AS s UNION ALL SELECT s, true FROM unnest($2::text[]) AS s) AS u
	GROUP BY 1 ORDER BY 1
) AS k

-- name: EventstoreConditionSettled
-- First in the transaction of conditional appends, before it waits for any lock: each read
-- position ($1 transaction ids, as text; $2 positions) must lie below the horizon, as every
-- position a read returns does; otherwise (a position a mutation returned while older
-- transactions still run) the appends are refused (SC002) before anything is written.
SELECT append_refused('SC002', a.tx, a.seq)
FROM (SELECT tx::xid8 AS tx, seq FROM unnest($1::text[], $2::bigint[]) AS u(tx, seq)) AS a
WHERE a.tx >= pg_snapshot_xmin(pg_current_snapshot())
LIMIT 1

-- name: EventstoreLockAllAppends
-- A conditional append whose condition matches every event waits for every append in flight
-- and holds off every other until it commits; it may write itself (its own lock).
LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE

-- name: EventstoreGroupWave
WITH req AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[]) WITH ORDINALITY AS r(stream_id, expected, n, grp, ord)
), ev AS (
	-- stored: the event id is taken. A subquery in the select list runs per row on the unique
	-- index whatever the planner thinks of the array's size; a join might scan the table.
	-- Ids the store made itself ($12 false: fresh version 7 UUIDs) are not looked up.
	SELECT e.*, CASE WHEN e.lookup THEN (SELECT true FROM event_ids x WHERE x.event_id = e.event_id) END AS stored
	FROM unnest($5::uuid[], $6::int[], $7::int[], $8::text[], $9::int[], $10::jsonb[], $11::jsonb[], $12::bool[], $13::text[])
	     WITH ORDINALITY AS e(event_id, a, k, type, schema_version, data, metadata, lookup, tags, ord)
), checked AS (
	SELECT r.stream_id, r.n, r.grp, r.ord, v.version,
		CASE WHEN r.ord IN (SELECT a FROM ev WHERE stored) THEN 'dup'
			WHEN r.expected IS NULL OR r.expected = v.version THEN 'ok'
			ELSE 'conflict' END AS status
	FROM req r, LATERAL (SELECT coalesce((SELECT s.version FROM streams s WHERE s.stream_id = r.stream_id), 0) AS version) v
), cur AS (
	-- The parts of one append (grp) are written together or not at all.
	SELECT stream_id, n, ord, version,
		CASE WHEN bool_and(status = 'ok') OVER (PARTITION BY grp) THEN 'ok'
			WHEN status = 'ok' THEN 'aborted' ELSE status END AS status
	FROM checked
), up AS (
	INSERT INTO streams AS s (stream_id, version)
	SELECT stream_id, version + n FROM cur WHERE status = 'ok' AND n > 0
	ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, updated_at = now()
	RETURNING s.stream_id
), ins AS (
	INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata, tags)
	SELECT ev.event_id, c.stream_id, c.version + ev.k, ev.type, ev.schema_version, ev.data, ev.metadata, string_to_array(ev.tags, E'\x1f')
	FROM ev JOIN cur c ON c.ord = ev.a WHERE c.status = 'ok'
	ORDER BY ev.ord -- positions are drawn in arrival order
	RETURNING event_id, stream_id, version, transaction_id, position, recorded_at
), ids AS (
	INSERT INTO event_ids (event_id, transaction_id, position) SELECT event_id, transaction_id, position FROM ins
)
SELECT c.status, c.version, i.first, i.tx, i.positions, i.at
FROM cur c LEFT JOIN (
	SELECT stream_id, min(version) AS first, (array_agg(transaction_id))[1] AS tx,
		array_agg(position ORDER BY version) AS positions, min(recorded_at) AS at
	FROM ins GROUP BY stream_id
) i ON i.stream_id = c.stream_id
ORDER BY c.ord

-- name: EventstoreGroupCommit
COMMIT

-- name: EventstoreGroupRollback
ROLLBACK

-- name: EventstoreCheckStream
WITH lock AS (SELECT pg_advisory_xact_lock({{Stream}}, hashtext($1)))
SELECT coalesce((SELECT version FROM streams WHERE stream_id = $1), 0) FROM lock

-- name: EventstoreMarkDeleted
UPDATE streams SET deleted_version = version,
	metadata = metadata || jsonb_build_object('truncateBefore', greatest(version, coalesce((metadata->>'truncateBefore')::bigint, 0)))
WHERE stream_id = $1

-- name: EventstoreDeletedStream
SELECT stream_id, deleted_version FROM streams
WHERE stream_id = ANY($1::text[]) AND deleted_version IS NOT NULL ORDER BY stream_id COLLATE "C" LIMIT 1

-- name: EventstoreRecreate
WITH lock AS (SELECT pg_advisory_xact_lock({{Stream}}, hashtext($1)))
UPDATE streams AS s SET deleted_version = NULL, updated_at = now(),
	metadata = s.metadata || jsonb_build_object('truncateBefore', s.version + 1)
FROM lock WHERE s.stream_id = $1 AND s.deleted_version IS NOT NULL
RETURNING s.version

-- name: EventstoreStreamForUpdate
SELECT version, deleted_version, metadata FROM streams WHERE stream_id = $1 FOR UPDATE

-- name: EventstoreSetStreamMetadata
UPDATE streams SET metadata = (metadata - 'truncateBefore' - 'maxAge' - 'maxCount') || $2::jsonb WHERE stream_id = $1

-- name: EventstoreSubjectKey
SELECT key, wrapped FROM personal_keys WHERE subject = $1

-- name: EventstoreMakeSubjectKey
INSERT INTO personal_keys (subject, key, wrapped) VALUES ($1, $2, $3)
ON CONFLICT (subject) DO UPDATE SET subject = EXCLUDED.subject RETURNING key, wrapped

-- name: EventstoreLockSubjectShared
SELECT pg_advisory_xact_lock_shared({{Subject}}, hashtext($1))

-- name: EventstoreLockSubjectExclusive
SELECT pg_advisory_xact_lock({{Subject}}, hashtext($1))

-- name: EventstoreForgetSubject
INSERT INTO personal_keys AS k (subject, key, forgotten_at) VALUES ($1, NULL, now())
ON CONFLICT (subject) DO UPDATE SET key = NULL, forgotten_at = coalesce(k.forgotten_at, now())

-- name: EventstoreDeleteSnapshots
DELETE FROM snapshots WHERE stream_id = ANY($1::text[])

-- name: EventstoreForgotten
SELECT EXISTS (SELECT 1 FROM personal_keys WHERE subject = $1 AND key IS NULL)

-- name: EventstoreSubjectKeys
SELECT subject, key, wrapped FROM personal_keys WHERE subject = ANY($1::text[])

-- name: EventstoreReadStreamForward
SELECT s.version, s.deleted_version, h.first, e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags
FROM streams s CROSS JOIN LATERAL (SELECT
	greatest(1, coalesce((s.metadata->>'truncateBefore')::bigint, 1),
		s.version - coalesce((s.metadata->>'maxCount')::bigint, s.version) + 1) AS first,
	now() - make_interval(secs => (s.metadata->>'maxAge')::bigint) AS cutoff) h
LEFT JOIN LATERAL (
	SELECT * FROM events WHERE stream_id = s.stream_id AND (h.cutoff IS NULL OR recorded_at >= h.cutoff)
	  AND version >= greatest($2, h.first) ORDER BY version LIMIT $3
) e ON true
WHERE s.stream_id = $1
ORDER BY e.version

-- name: EventstoreReadStreamBackward
SELECT s.version, s.deleted_version, h.first, e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags
FROM streams s CROSS JOIN LATERAL (SELECT
	greatest(1, coalesce((s.metadata->>'truncateBefore')::bigint, 1),
		s.version - coalesce((s.metadata->>'maxCount')::bigint, s.version) + 1) AS first,
	now() - make_interval(secs => (s.metadata->>'maxAge')::bigint) AS cutoff) h
LEFT JOIN LATERAL (
	SELECT * FROM events WHERE stream_id = s.stream_id AND (h.cutoff IS NULL OR recorded_at >= h.cutoff)
	  AND version <= $2 AND version >= h.first ORDER BY version DESC LIMIT $3
) e ON true
WHERE s.stream_id = $1
ORDER BY e.version DESC

-- name: EventstoreStream
SELECT version, deleted_version IS NOT NULL, metadata FROM streams WHERE stream_id = $1

-- name: EventstoreReadAll
SELECT e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags
FROM events e
WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.transaction_id, e.position
LIMIT $3

-- name: EventstoreReadAllCategory
SELECT e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags
FROM events e
WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND e.category = $4
ORDER BY e.transaction_id, e.position
LIMIT $3

-- name: EventstoreReadAllTypes
SELECT e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags
FROM events e
WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND e.type = ANY($4::text[])
ORDER BY e.transaction_id, e.position
LIMIT $3

-- name: EventstoreReadAllCategoryTypes
SELECT e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags
FROM events e
WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND e.category = $4 AND e.type = ANY($5::text[])
ORDER BY e.transaction_id, e.position
LIMIT $3

-- name: EventstoreCountAfter
SELECT count(*) FROM (
	SELECT 1 FROM events e
	WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
	  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
	  AND ($3 = '' OR e.category = $3)
	LIMIT $4
) c

-- name: EventstoreAsOf
SELECT e.transaction_id, e.position, pg_snapshot_xmin(pg_current_snapshot())
FROM (SELECT 1) one LEFT JOIN LATERAL (
	SELECT transaction_id, position FROM events
	WHERE recorded_at > $1 AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
	ORDER BY transaction_id, position LIMIT 1
) e ON true

-- name: EventstoreAsOfPending
SELECT EXISTS (SELECT 1 FROM events WHERE transaction_id >= $2::xid8 AND recorded_at <= $1)

-- name: EventstoreAsOfUnsettled
SELECT EXISTS (SELECT 1 FROM pg_stat_activity
	WHERE xact_start <= $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND datname = current_database())
  OR EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE prepared <= $1 AND database = current_database())

-- name: EventstoreCovers
SELECT CASE WHEN $2::bigint = 0
	THEN pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8
	ELSE pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 END

-- name: EventstoreSaveSnapshot
WITH old AS (DELETE FROM snapshots WHERE stream_id = $1 AND shape <> $3)
INSERT INTO snapshots (stream_id, version, shape, state) VALUES ($1, $2, $3, $4)
ON CONFLICT (stream_id, version) DO UPDATE SET shape = $3, state = $4, created_at = now()

-- name: EventstoreLatestSnapshot
SELECT version, state FROM snapshots
WHERE stream_id = $1 AND shape = $2 AND version <= $3 ORDER BY version DESC LIMIT 1

-- name: EventstoreStreamVersionBefore
SELECT coalesce(max(version), 0) FROM events
WHERE stream_id = $1 AND (transaction_id, position) < ($2::xid8, $3::bigint)

-- name: EventstoreStats
SELECT date_bin($3::interval, e.recorded_at, $4::timestamptz) AS bucket, e.type, count(*)
FROM events e
WHERE e.recorded_at >= $1 AND e.recorded_at < $2
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND ($5 = '' OR e.category = $5)
  AND (cardinality($6::text[]) = 0 OR e.type = ANY($6::text[]))
GROUP BY 1, 2

-- name: EventstoreListStreams
SELECT stream_id, version, deleted_version IS NOT NULL, metadata FROM streams
WHERE stream_id COLLATE "C" > $1
  AND starts_with(stream_id, $2)
  AND ($3 = '' OR split_part(stream_id, '-', 1) = $3)
ORDER BY stream_id COLLATE "C"
LIMIT $4

-- name: EventstoreListStreamsInRange
SELECT stream_id, version, deleted_version IS NOT NULL, metadata FROM streams
WHERE stream_id COLLATE "C" > $1
  AND starts_with(stream_id, $2)
  AND ($3 = '' OR split_part(stream_id, '-', 1) = $3)
  AND stream_id COLLATE "C" >= $5 AND stream_id COLLATE "C" < $6
ORDER BY stream_id COLLATE "C"
LIMIT $4

-- name: EventstoreHeldBackBy
-- Lists the transactions of every database of the cluster, deliberately: the horizon
-- (pg_snapshot_xmin) is cluster-wide, so a transaction in any database holds back this
-- database's global order, and the one to find may well be elsewhere. Unlike the queries that
-- ask about this database's own sessions and locks, it must not filter on the current database.
SELECT pid, coalesce(datname, ''), coalesce(usename, ''), coalesce(state, ''), xact_start, '' AS gid, age(backend_xid) AS age
FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL
UNION ALL
SELECT 0, database, owner, 'prepared', prepared, gid, age(transaction) FROM pg_prepared_xacts
ORDER BY age DESC
LIMIT $1

-- name: EventstoreSnapshotXmin
SELECT pg_snapshot_xmin(pg_current_snapshot())

-- name: EventstoreSnapshotXmax
SELECT pg_snapshot_xmax(pg_current_snapshot())

-- name: EventstoreQuiet
-- The horizon is past ($3, $4), and no event of category $5 lies after ($1, $2) up to and
-- including ($3, $4).
SELECT pg_snapshot_xmin(pg_current_snapshot()) > $3::xid8 AND NOT EXISTS (
	SELECT 1 FROM events e WHERE e.category = $5
	AND (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
	AND (e.transaction_id, e.position) <= ($3::xid8, $4::bigint))

-- name: EventstoreScavengeStreams
-- Lists, a page at a time, the streams whose settings may hide events (streams_lifecycle_idx).
SELECT stream_id, metadata ? 'maxAge' FROM streams
WHERE (metadata <> '{}'::jsonb OR deleted_version IS NOT NULL) AND stream_id > $1
ORDER BY stream_id LIMIT $2

-- fragment: ScavengeDelete
AND e.type <> '$StreamDeleted'
	  AND (e.transaction_id, e.position) <= ($2::xid8, $3::bigint)
	ORDER BY e.version LIMIT $4
), gone AS (
	DELETE FROM events e USING doomed d
	WHERE e.transaction_id = d.transaction_id AND e.position = d.position
	RETURNING 1
), ids AS (
	-- as an archive does, the ids of deleted events go too (event_ids, migration 00004)
	DELETE FROM event_ids x USING doomed d WHERE x.event_id = d.event_id
)
SELECT count(*) FROM gone

-- name: EventstoreScavengeBatch
-- Deletes up to $4 events of stream $1 that its settings hide, oldest version first, none after
-- position ($2, $3), never the tombstone ($StreamDeleted). What is hidden is computed as
-- ReadStream computes it, from the settings committed when the statement starts; without a
-- maxAge the hidden events are a range of versions the (stream_id, version) index finds.
WITH h AS (
	SELECT s.stream_id,
		greatest(1, coalesce((s.metadata->>'truncateBefore')::bigint, 1),
			s.version - coalesce((s.metadata->>'maxCount')::bigint, s.version) + 1) AS first
	FROM streams s WHERE s.stream_id = $1
), doomed AS (
	SELECT e.transaction_id, e.position, e.event_id FROM events e, h
	WHERE e.stream_id = h.stream_id AND e.version < h.first
	  {{ScavengeDelete}}

-- name: EventstoreScavengeBatchMaxAge
-- EventstoreScavengeBatch for a stream with a maxAge: its events are read in version order until
-- enough hidden ones are found.
WITH h AS (
	SELECT s.stream_id,
		greatest(1, coalesce((s.metadata->>'truncateBefore')::bigint, 1),
			s.version - coalesce((s.metadata->>'maxCount')::bigint, s.version) + 1) AS first,
		now() - make_interval(secs => (s.metadata->>'maxAge')::bigint) AS cutoff
	FROM streams s WHERE s.stream_id = $1
), doomed AS (
	SELECT e.transaction_id, e.position, e.event_id FROM events e, h
	WHERE e.stream_id = h.stream_id AND (e.version < h.first OR e.recorded_at < h.cutoff)
	  {{ScavengeDelete}}
