// Package advisory holds Strata's advisory-lock classes and keys, the one place they are
// defined.
//
// Every advisory lock Strata takes is of the two-int form, (class, key): the class says what
// the lock guards, the key which one (mostly hashtext of a name). Locks of different classes
// never conflict, whatever their keys, so a class is never shared by two kinds of thing: a
// stream id, which clients choose, can then never name a lock of anything else. In pg_locks such
// a lock shows classid = class, objid = key (as oid: hashtext(...)::oid) and objsubid = 2.
//
// The classes are untyped string constants, to be written into the SQL text where it is
// declared: `SELECT pg_advisory_xact_lock(` + advisory.Stream + `, hashtext($1))`. The
// numbers are part of the protocol between running servers: two binaries that exclude each
// other must agree on them, so a class's number changes only with a note on rolling upgrades
// (as Partitions' does).
package advisory

// Stream is the class of the per-stream append locks, key hashtext(stream id). Transaction
// scoped: every append, recreation and version check of a stream takes it before it writes
// anything, so that appends to one stream take turns (internal/store/eventstore).
const Stream = "1398031425"

// Checkpoint is the class of the projector checkpoint locks, key hashtext(checkpoint name).
// Transaction scoped: each batch of a projector takes it, so that batches of one checkpoint
// never overlap, even under a stale leader (internal/runtime/projection).
const Checkpoint = "1398031426"

// Rebuild is the class of the rebuild locks, key hashtext(projection name). Session scoped:
// held for as long as a projection is being rebuilt, so that two rebuilds of one projection do
// not run at once, and read from pg_locks to report a rebuild in progress (internal/runtime/projection).
const Rebuild = "1398031427"

// Subject is the class of the personal-data subject locks, key hashtext(subject). Transaction
// scoped: saving a snapshot of a subject's stream takes it shared, forgetting the subject
// exclusive, so that no snapshot holding the subject's data in the clear outlives the
// forgetting (internal/store/eventstore).
const Subject = "1398031428"

// Leader is the class of the leadership locks, key hashtext(name). Session scoped, on a
// connection of its own: the session that holds it leads the name, and checks in pg_locks that
// it still does (internal/store/leader).
const Leader = "1398031429"

// Partitions is the class of the partition-maintenance lock, whose one key is PartitionsKey.
// Transaction scoped: making, detaching, attaching again, dropping and restoring partitions
// of the events table take it, so that they run one at a time (internal/store/partition).
//
// It was once Stream with the same key, so that an append to the stream "events partitions"
// waited for partition maintenance and held it up. During a rolling upgrade across the move,
// servers of the old and the new binary do not exclude each other's maintenance. That is
// harmless: a partition's table name is its range, so two servers making the same one collide
// on the catalog's unique name and the loser's transaction rolls back whole (Ensure logs it and
// tries again at its next check); ATTACH PARTITION waits for any other on events and refuses a
// range that overlaps an attached partition; detaching a partition twice fails the second time.
// docs/design.md, "Partitions and archives", has the details.
const Partitions = "1398031430"

// PartitionsKey is the key of the one lock of class Partitions, as SQL.
const PartitionsKey = "hashtext('events partitions')"

// Match is the class of the consistency-boundary locks, key hashtext of "t:" and an event type
// or "g:" and a tag. Transaction scoped: every append takes it shared for each type and tag of
// its events, and a conditional append takes it exclusive for the keys its condition could match
// (one tag of each item with tags, each type of an item with types only), so that a condition is
// checked only once every append that could write a matching event has committed or rolled
// back, and no such append starts writing before the conditional one commits
// (internal/store/eventstore, docs/consistency.md).
const Match = "1398031431"
