package pgsql

// Statements of eventstore.sql: the event store, internal/store/eventstore.

// Appends, by Append (and within AppendMulti, DeleteStream and a recreation). An append is one
// statement, so it commits whole or not at all, in one round trip.
//
// Appends to one stream take turns on a transaction-scoped advisory lock keyed by the stream id,
// and take it before the transaction writes anything. A transaction gets its id at its first
// write, so an append that waited for another always gets a younger transaction id, and the
// global (transaction_id, position) order keeps every stream's events in version order. A row
// lock on streams would not do: a transaction takes its id before it waits for a row lock, so
// the waiter could hold the older id and be read first. The lock CTE feeds the row the streams
// write needs, so the write cannot start before the lock is held.
//
// The stream row is then written in a way that sees the newest committed version even though the
// statement's snapshot predates the wait: ON CONFLICT DO UPDATE, and UPDATE (which re-checks its
// WHERE against the newest row version). When the expected version does not match, no stream
// row comes back, nothing is inserted and the statement returns no rows.
//
// Appends to different streams never wait for each other, but for a rare hash collision, which
// only makes two appends take turns. The class, advisory.Stream, is the streams' alone.
//
// There is a statement per expected version (any, no stream, a version) and count of events
// (one, many). All take $1 the stream id, $2 the expected version (NULL: any) and $3 the number
// of events; then the events: $4 id, $5 type, $6 schema version, $7 data, $8 metadata and $9
// tags, for one event as scalars (cheaper to encode and to plan than one-element arrays; tags
// as a text[], NULL for none), for many as arrays in version order (each event's tags joined
// by U+001F, which a tag cannot hold, or NULL). $10 are the keys of the consistency-boundary
// locks the append takes shared after its stream's ("t:" and each type, "g:" and each tag;
// docs/consistency.md). Every statement that inserts events also records their ids in
// event_ids, whose primary key keeps event ids unique (events, partitioned by position, cannot;
// docs/design.md, "Partitions and archives"). A CTE costs a third of what a trigger did.
//
// One event comes back as a row of its version, transaction id, its position as a one-element
// array, and its time; none on a version mismatch. Many come back as one row: the first
// version, the transaction id, the positions in version order and the time; with no stream row
// (a version mismatch) the row holds NULLs.
var (
	// EventstoreAppendOneToAny appends one event whatever the stream's version ($2 is NULL),
	// making the stream when it does not exist.
	EventstoreAppendOneToAny = get("EventstoreAppendOneToAny")
	// EventstoreAppendManyToAny appends several events whatever the stream's version ($2 is
	// NULL), making the stream when it does not exist.
	EventstoreAppendManyToAny = get("EventstoreAppendManyToAny")
	// EventstoreAppendOneToNew appends one event to a stream that must not exist ($2 is 0): a
	// unique violation on streams_pkey says it does.
	EventstoreAppendOneToNew = get("EventstoreAppendOneToNew")
	// EventstoreAppendManyToNew appends several events to a stream that must not exist ($2 is
	// 0): a unique violation on streams_pkey says it does.
	EventstoreAppendManyToNew = get("EventstoreAppendManyToNew")
	// EventstoreAppendOneAtVersion appends one event to a stream that must be at version $2, at
	// least 1.
	EventstoreAppendOneAtVersion = get("EventstoreAppendOneAtVersion")
	// EventstoreAppendManyAtVersion appends several events to a stream that must be at version
	// $2, at least 1.
	EventstoreAppendManyAtVersion = get("EventstoreAppendManyAtVersion")
)

var (
	// EventstoreStreamVersion reads the version of stream $1: 0 when it does not exist.
	EventstoreStreamVersion = get("EventstoreStreamVersion")

	// EventstoreRepeated finds stored events with the ids of an append and says whether each
	// has the content the append sends, comparing as PostgreSQL compares jsonb values. $1..$6
	// are the append's ids, types, schema versions, data, metadata and tags (joined by U+001F),
	// as arrays; a row per
	// stored event, in the append's order: its 1-based place in the append, stream, version,
	// transaction id, position, time and whether it is identical. Event ids are unique in
	// event_ids, which says where each event is (events is partitioned by position, so it can
	// hold no unique index on event ids; migrations/00004_partitioned_events.sql).
	EventstoreRepeated = get("EventstoreRepeated")
)

// Group commit (eventstore's group.go): a batch of appends is sent as one pgx batch, BEGIN,
// EventstoreGroupLock, EventstoreGroupWave once per wave, COMMIT, in one round trip.
var (
	// EventstoreGroupBegin opens a group commit's transaction.
	EventstoreGroupBegin = get("EventstoreGroupBegin")

	// EventstoreGroupLock takes the advisory lock of every stream of a batch ($1, the stream
	// ids), in byte order of the ids (AppendMulti's order), before the batch writes anything;
	// then, in the same statement, the batch's consistency-boundary locks as EventstoreGroupKeys
	// takes them ($2 shared, $3 exclusive). It also sets plan_cache_mode for the transaction: the wave statement is prepared once per
	// connection, and planning it afresh for every batch would cost more than running it (one
	// statement fewer than a SET LOCAL).
	EventstoreGroupLock = get("EventstoreGroupLock")

	// EventstoreLockStreams takes the advisory lock of every stream $1, in byte order of the
	// ids, as EventstoreGroupLock does, for a multi-stream transaction of its own: it must hold
	// every stream's lock before its first write (and so before it has a transaction id).
	EventstoreLockStreams = get("EventstoreLockStreams")

	// EventstoreGroupKeys takes the consistency-boundary locks (advisory.Match) of a batch, or of
	// a conditional append, after its streams' locks and before it writes: $1 the keys taken
	// shared (the types and tags of its events), $2 those taken exclusive (what its condition
	// could match), in key order, as every append takes them, so that none deadlocks another.
	EventstoreGroupKeys = get("EventstoreGroupKeys")

	// EventstoreConditionSettled refuses (SQLSTATE SC002) a conditional append whose read
	// position ($1 transaction id, $2 position) is not below the horizon yet; it runs first in
	// the append's transaction, before any lock.
	EventstoreConditionSettled = get("EventstoreConditionSettled")

	// EventstoreLockAllAppends makes a conditional append whose condition matches every event
	// wait for every append in flight (each holds ROW EXCLUSIVE on events once it writes) and
	// hold off every other until it ends.
	EventstoreLockAllAppends = get("EventstoreLockAllAppends")

	// EventstoreGroupWave appends one wave. A row per part: stream $1, expected version $2
	// (NULL: any), event count $3 (0: a check-only part of an AppendMulti), and $4 the append it
	// belongs to; events $5.. with the part $6 (1-based) they belong to, $7 their 1-based place
	// in it, $12 whether their ids may be stored already and $13 their tags (joined by U+001F,
	// or NULL). It returns a row per part, in
	// order: its status (ok; conflict; dup; aborted: fine, but another part of its append was
	// not), the stream's version before it, and, when written, its first version, transaction
	// id, positions and time.
	EventstoreGroupWave = get("EventstoreGroupWave")

	// EventstoreGroupCommit commits a group commit's transaction: its command tag is
	// EventstoreCommitTag when the transaction committed.
	EventstoreGroupCommit = get("EventstoreGroupCommit")

	// EventstoreGroupRollback ends a group commit's transaction that a failed statement left
	// aborted, before its connection goes back to the pool.
	EventstoreGroupRollback = get("EventstoreGroupRollback")
)

// EventstoreCommitTag is the command tag PostgreSQL answers a COMMIT with when the transaction
// committed; the COMMIT of an aborted transaction answers ROLLBACK.
const EventstoreCommitTag = "COMMIT"

var (
	// EventstoreCheckStream reads the version of stream $1 (0 when it does not exist) under the
	// same lock appends to it take, so that the version cannot change before the transaction
	// ends: a check-only part of an AppendMulti.
	EventstoreCheckStream = get("EventstoreCheckStream")
)

// The stream lifecycle (eventstore's lifecycle.go): deletion, recreation and stream metadata.
var (
	// EventstoreMarkDeleted marks stream $1 deleted at its version, the tombstone's, which
	// DeleteStream appended in the same transaction, and hides the events up to it
	// (truncateBefore).
	EventstoreMarkDeleted = get("EventstoreMarkDeleted")

	// EventstoreDeletedStream finds, of the streams $1 (an array), the first deleted one in
	// byte order of the ids: its id and the version it was deleted at.
	EventstoreDeletedStream = get("EventstoreDeletedStream")

	// EventstoreRecreate undeletes stream $1 under its append lock: the events up to the
	// tombstone stay hidden (truncateBefore), and the version it returns is where the
	// recreating append goes on. No row when the stream is not deleted (any more).
	EventstoreRecreate = get("EventstoreRecreate")

	// EventstoreStreamForUpdate reads stream $1's version, deletion version and metadata, and
	// locks its row (FOR UPDATE): settings are changed one at a time, checked against the
	// settings they replace. Appends only wait for the row, as they do for one another's.
	EventstoreStreamForUpdate = get("EventstoreStreamForUpdate")

	// EventstoreSetStreamMetadata replaces the lifecycle settings of stream $1 with $2 (jsonb).
	// Only these settings' keys are replaced: the column may carry others.
	EventstoreSetStreamMetadata = get("EventstoreSetStreamMetadata")
)

// Personal data (eventstore's personal.go): the subjects' keys, and forgetting a subject.
var (
	// EventstoreSubjectKey reads subject $1's key (NULL once forgotten) and whether it is
	// wrapped with the master key.
	EventstoreSubjectKey = get("EventstoreSubjectKey")

	// EventstoreMakeSubjectKey stores key $2 of subject $1, wrapped when $3, and returns the
	// key and wrapped of the subject's row. Two writers that make the first key of one subject
	// at once get the same one: the insert that loses the race on the primary key takes the
	// winner's row (ON CONFLICT DO UPDATE returns the newest row version, even one committed
	// after the statement's snapshot).
	EventstoreMakeSubjectKey = get("EventstoreMakeSubjectKey")

	// EventstoreLockSubjectShared takes subject $1's lock (class advisory.Subject) shared, as
	// saving a snapshot of its stream does: savers do not exclude each other, only Forget.
	EventstoreLockSubjectShared = get("EventstoreLockSubjectShared")

	// EventstoreLockSubjectExclusive takes subject $1's lock exclusive, as forgetting it does,
	// so that no snapshot holding the subject's data in the clear outlives the forgetting.
	EventstoreLockSubjectExclusive = get("EventstoreLockSubjectExclusive")

	// EventstoreForgetSubject deletes subject $1's key for good and leaves a tombstone (a NULL
	// key), so that none is made again.
	EventstoreForgetSubject = get("EventstoreForgetSubject")

	// EventstoreDeleteSnapshots deletes the snapshots of the streams $1 (an array).
	EventstoreDeleteSnapshots = get("EventstoreDeleteSnapshots")

	// EventstoreForgotten says whether subject $1 has been forgotten.
	EventstoreForgotten = get("EventstoreForgotten")

	// EventstoreSubjectKeys reads the subject, key (NULL once forgotten) and wrapped of every
	// subject of $1 (an array) that has a row: the keys of one page of events.
	EventstoreSubjectKeys = get("EventstoreSubjectKeys")
)

// Reads of one stream. The LEFT JOIN reads the stream's version and its events in one
// statement, so in one snapshot. h is what the stream's lifecycle settings hide (eventstore's
// lifecycle.go): versions before first, and, with a maxAge, events recorded before cutoff.
// Both take stream $1, the version $2 to start from and at most $3 events, and return a row per
// event: the stream's version, deletion version and first visible version, then the event's
// columns (all NULL when no event is in the range).
var (
	// EventstoreReadStreamForward reads stream $1 from version $2 up.
	EventstoreReadStreamForward = get("EventstoreReadStreamForward")
	// EventstoreReadStreamBackward reads stream $1 from version $2 down.
	EventstoreReadStreamBackward = get("EventstoreReadStreamBackward")
)

var (
	// EventstoreStream reads stream $1's version, whether it is deleted, and its metadata.
	EventstoreStream = get("EventstoreStream")
)

// Reads of the global order, after position ($1, $2), at most $3 events. Reads of the global
// order see only events of transactions older than the oldest transaction still running when
// the read's snapshot was taken (its xmin). All of those have ended, so no event can ever commit
// behind a position a reader has passed: readers see no gaps, no duplicates, and all in the same
// order. The cost is that a long-running transaction anywhere in the cluster holds back what
// readers can see (never what they eventually get). docs/design.md has the reasoning and the
// alternatives.
var (
	// EventstoreReadAll reads events of every stream.
	EventstoreReadAll = get("EventstoreReadAll")
	// EventstoreReadAllCategory reads events of category $4.
	EventstoreReadAllCategory = get("EventstoreReadAllCategory")
	// EventstoreReadAllTypes reads events of the types $4 (an array).
	EventstoreReadAllTypes = get("EventstoreReadAllTypes")
	// EventstoreReadAllCategoryTypes reads events of category $4 and the types $5 (an array).
	EventstoreReadAllCategoryTypes = get("EventstoreReadAllCategoryTypes")

	// EventstoreCountAfter counts, up to a cap $4, the visible events after position ($1, $2),
	// in category $3 or all ($3 empty).
	EventstoreCountAfter = get("EventstoreCountAfter")
)

// The log as of a time (AsOf).
var (
	// EventstoreAsOf finds the first visible event, in the global order, whose transaction
	// began after time $1: its position (NULLs when there is none), and the horizon, the
	// snapshot's xmin.
	EventstoreAsOf = get("EventstoreAsOf")

	// EventstoreAsOfPending says whether an event that began by $1 is at or above the horizon
	// $2, where readers of the global order do not see it yet.
	EventstoreAsOfPending = get("EventstoreAsOfPending")

	// EventstoreAsOfUnsettled says whether a transaction that began at or before $1 is still
	// open in this database (prepared ones included): its events, when it commits, may still
	// belong to the log as of $1.
	//
	// Only this database: a transaction belongs to the database of its session, so only one of
	// this database can append to its events table, and one open in another database of the
	// cluster cannot change the log as of $1. (What such a transaction can do is hold back the
	// horizon, which is cluster-wide; AsOf waits for that separately, through
	// EventstoreAsOfPending.) Counting the cluster's would make AsOf wait, and time out, on work
	// that is not Strata's.
	EventstoreAsOfUnsettled = get("EventstoreAsOfUnsettled")
)

var (
	// EventstoreCovers says whether every event before position ($1, $2) is visible to reads
	// from now on: every transaction up to $1 (or before it, when $2 is 0: a position before
	// all of $1's events) has ended in this server's view. On a standby it is false until the
	// standby has replayed that far.
	EventstoreCovers = get("EventstoreCovers")
)

// Snapshots of streams' folded state (eventstore's snapshot.go).
var (
	// EventstoreSaveSnapshot stores the snapshot of stream $1 at version $2 of shape $3 with
	// state $4, replacing one at the same version, and deletes the stream's snapshots of other
	// shapes.
	EventstoreSaveSnapshot = get("EventstoreSaveSnapshot")

	// EventstoreLatestSnapshot reads the version and state of stream $1's newest snapshot of
	// shape $2 at or before version $3.
	EventstoreLatestSnapshot = get("EventstoreLatestSnapshot")

	// EventstoreStreamVersionBefore reads the version of stream $1's last event before position
	// ($2, $3), 0 when it has none.
	EventstoreStreamVersionBefore = get("EventstoreStreamVersionBefore")
)

var (
	// EventstoreStats counts the events recorded in [$1, $2) per bucket of interval $3,
	// aligned on $4, and per type, in category $5 (all when empty) and of the types $6 (all
	// when empty). It reads only the columns of events_recorded_at_idx
	// (migrations/00008_statistics.sql), so it runs as an index-only scan. Like a read of the
	// global order, it sees only events of transactions older than the snapshot's xmin: a
	// count never includes an event allEvents cannot show yet.
	EventstoreStats = get("EventstoreStats")
)

// Lists of streams, in byte order of their ids, after id $1, starting with prefix $2 (or ""),
// in category $3 (or ""), at most $4: each row a stream's id, version, whether it is deleted
// and its metadata.
//
// The range on stream_id COLLATE "C" (its index, migration 00009) is what makes a search cheap:
// the ids that start with p are exactly [p, prefixEnd(p)) in byte order, those of category c lie
// in [c, c+"."), and an index scan in that order stops after first+1 rows. starts_with and the
// category test only recheck the rows of the range. The statements are to be planned for their
// parameters every time (pgx.QueryExecModeExec): a generic plan cannot know how wide the range
// is, and sorts all of it.
var (
	// EventstoreListStreams lists streams when the range has no upper bound.
	EventstoreListStreams = get("EventstoreListStreams")
	// EventstoreListStreamsInRange lists streams whose ids lie in [$5, $6) too.
	EventstoreListStreamsInRange = get("EventstoreListStreamsInRange")
)

// The horizon of the global order, and who holds it back (internal/store/eventstore/horizon.go).
var (
	// EventstoreHeldBackBy lists up to $1 transactions of the whole cluster, oldest first:
	// pid, database, user, state, start, prepared gid, age.
	EventstoreHeldBackBy = get("EventstoreHeldBackBy")
	// EventstoreSnapshotXmin reads the xmin of the statement's snapshot: the horizon.
	EventstoreSnapshotXmin = get("EventstoreSnapshotXmin")
	// EventstoreSnapshotXmax reads the xmax of the statement's snapshot.
	EventstoreSnapshotXmax = get("EventstoreSnapshotXmax")
	// EventstoreQuiet reports whether the horizon is past ($3, $4) and no event of category $5
	// lies after ($1, $2) up to it.
	EventstoreQuiet = get("EventstoreQuiet")
)

// The scavenger (internal/store/eventstore/scavenge.go).
var (
	// EventstoreScavengeStreams lists up to $2 streams after stream id $1 whose settings may
	// hide events: stream id, and whether it has a maxAge.
	EventstoreScavengeStreams = get("EventstoreScavengeStreams")
	// EventstoreScavengeBatch deletes up to $4 hidden events of stream $1, none after position
	// ($2, $3), and returns how many.
	EventstoreScavengeBatch = get("EventstoreScavengeBatch")
	// EventstoreScavengeBatchMaxAge is EventstoreScavengeBatch for a stream with a maxAge.
	EventstoreScavengeBatchMaxAge = get("EventstoreScavengeBatchMaxAge")
)
