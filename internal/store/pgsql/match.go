package pgsql

import (
	"fmt"
	"strconv"
	"strings"
)

// Queries of the log by types and tags (docs/consistency.md): a query is a list of items, any
// of which an event may match; an item matches an event of one of its types (any type when it
// has none) carrying every one of its tags. The text depends on the query's shape (how many
// items, and which of types and tags each has), never on its values, which are parameters: a
// connection prepares each shape once. An item with types and tags is
// (e.type = ANY($n) AND e.tags @> $n+1), which the (type, transaction_id, position) index and
// the GIN index on tags serve; an item with neither is TRUE.

// MatchItem is the shape of one item of a query: whether it has types, and whether tags.
type MatchItem struct{ Types, Tags bool }

// eventColumns are the columns of an event every read of events returns, in the order the
// event store scans them.
const eventColumns = `e.transaction_id, e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at, e.tags`

// match is the condition for items, its parameters numbered from first: each item's types
// (text[]) when it has them, then its tags (text[]) when it has them. It reports the number of
// parameters it uses. No item is FALSE.
func match(items []MatchItem, first int) (string, int) {
	if len(items) == 0 {
		return "FALSE", 0
	}
	n := first
	ors := make([]string, len(items))
	for i, it := range items {
		var ands []string
		if it.Types {
			ands = append(ands, "e.type = ANY($"+strconv.Itoa(n)+"::text[])")
			n++
		}
		if it.Tags {
			ands = append(ands, "e.tags @> $"+strconv.Itoa(n)+"::text[]")
			n++
		}
		if len(ands) == 0 {
			ands = []string{"TRUE"}
		}
		ors[i] = "(" + strings.Join(ands, " AND ") + ")"
	}
	return "(" + strings.Join(ors, " OR ") + ")", n - first
}

// EventstoreReadQuery reads the events that match a query in the global order, as
// EventstoreReadAll reads every event: after ($1 transaction id, $2 position), below the
// horizon, at most $3; the items' values from $4 on. Rows as EventstoreReadAll's.
func EventstoreReadQuery(items []MatchItem) string {
	cond, _ := match(items, 4)
	return "SELECT " + eventColumns + `
FROM events e
WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND ` + cond + `
ORDER BY e.transaction_id, e.position
LIMIT $3`
}

// EventstoreLastMatch is the position ($1 transaction id, $2 position) of the last committed
// event that matches a query, below the horizon or not; no row when none does. The items'
// values from $1 on.
func EventstoreLastMatch(items []MatchItem) string {
	cond, _ := match(items, 1)
	return `SELECT e.transaction_id, e.position FROM events e
WHERE ` + cond + `
ORDER BY e.transaction_id DESC, e.position DESC
LIMIT 1`
}

// EventstoreGroupWaveIf is EventstoreGroupWave for conditional appends, each with a condition
// of its own, after a batch's plain waves. The conditions' items come as one row each: $14 the
// append ($4's number) it belongs to, $15 its types and $16 its tags (joined by U+001F; NULL
// when it has none), and $17 and $18 the append's read position (transaction id as text,
// position). An append with an event matching one of its items after its read position gets
// the status condition on every part and writes nothing, unless its ids are stored (dup, which
// is answered first: a repeat). The statement runs after the batch's locks, in a snapshot of
// its own, so its checks see every append that could match and committed, and the batch's
// earlier waves; not the other appends of the same wave, so the caller puts an append whose
// condition matches an earlier one's events into a later wave. Rows as the wave's, with two
// more columns: the matching event's transaction id and position (NULL when none).
//
// Its text is the same for every condition, so a connection prepares it once. An item with
// tags is found through the GIN index on tags, one with types only through the
// (type, transaction_id, position) index, and one with neither through the primary key; each
// branch runs only for the items of its kind.
var EventstoreGroupWaveIf = groupWaveIf(false) //nolint:gochecknoglobals // a statement, built once

// EventstoreGroupWaveIfTagged is EventstoreGroupWaveIf for a wave in which every item of every
// condition has tags, the common case: without the branches for the other kinds, which cost a
// quarter of what the checks cost.
var EventstoreGroupWaveIfTagged = groupWaveIf(true) //nolint:gochecknoglobals // a statement, built once

func groupWaveIf(tagged bool) string {
	find := `(SELECT e.transaction_id, e.position FROM events e
		WHERE q.tags IS NOT NULL AND e.tags @> q.tags AND (q.types IS NULL OR e.type = ANY(q.types))
			AND (e.transaction_id, e.position) > (q.tx, q.seq)
		LIMIT 1)
		UNION ALL
		(SELECT e.transaction_id, e.position FROM events e
		WHERE q.tags IS NULL AND q.types IS NOT NULL AND e.type = ANY(q.types)
			AND (e.transaction_id, e.position) > (q.tx, q.seq)
		LIMIT 1)
		UNION ALL
		(SELECT e.transaction_id, e.position FROM events e
		WHERE q.tags IS NULL AND q.types IS NULL AND (e.transaction_id, e.position) > (q.tx, q.seq)
		LIMIT 1)`
	if tagged {
		find = `SELECT e.transaction_id, e.position FROM events e
		WHERE e.tags @> q.tags AND (q.types IS NULL OR e.type = ANY(q.types))
			AND (e.transaction_id, e.position) > (q.tx, q.seq)
		LIMIT 1`
	}
	blocked := `conds AS (
	SELECT q.grp, string_to_array(q.types, E'\x1f') AS types, string_to_array(q.tags, E'\x1f') AS tags,
		q.tx::xid8 AS tx, q.seq
	FROM unnest($14::int[], $15::text[], $16::text[], $17::text[], $18::bigint[]) AS q(grp, types, tags, tx, seq)
), blocked AS (
	SELECT DISTINCT ON (q.grp) q.grp, b.transaction_id, b.position
	FROM conds q CROSS JOIN LATERAL (
		` + find + `
	) b
	ORDER BY q.grp
), checked AS (`
	s := mustReplace(EventstoreGroupWave, "), checked AS (", "), "+blocked)
	s = mustReplace(s, "THEN 'dup'\n", "THEN 'dup'\n\t\t\tWHEN r.grp IN (SELECT grp FROM blocked) THEN 'condition'\n")
	s = mustReplace(s, "SELECT stream_id, n, ord, version,\n", "SELECT stream_id, n, grp, ord, version,\n")
	s = mustReplace(s, "SELECT c.status, c.version, i.first, i.tx, i.positions, i.at\n",
		"SELECT c.status, c.version, i.first, i.tx, i.positions, i.at, b.transaction_id, b.position\n")
	return mustReplace(s, ") i ON i.stream_id = c.stream_id\n", ") i ON i.stream_id = c.stream_id\nLEFT JOIN blocked b ON b.grp = c.grp\n")
}

// mustReplace replaces the one occurrence of old in s: a statement built from another that no
// longer has what the builder expects stops the program when it is first built, and the tests
// that prepare every built statement.
func mustReplace(s, old, repl string) string {
	if strings.Count(s, old) != 1 {
		panic(fmt.Sprintf("pgsql: %q occurs %d times in the statement a builder changes", old, strings.Count(s, old)))
	}
	return strings.Replace(s, old, repl, 1)
}
