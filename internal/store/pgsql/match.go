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

// EventstoreGroupWaveIf is EventstoreGroupWave for one conditional append (a wave of its own in
// a group commit, after the batch's other waves): when an event matching its query lies after
// ($14 transaction id, $15 position), every part gets the status condition and nothing is
// written, unless the append's ids are stored (dup, which is answered first: a repeat). The
// statement runs after the batch's locks, in a snapshot of its own, so its check sees every
// append that could match and committed, and the batch's own earlier waves. Rows as the wave's,
// with two more columns: the matching event's transaction id and position (NULL when none).
// The items' values from $16 on.
func EventstoreGroupWaveIf(items []MatchItem) string {
	cond, _ := match(items, 16)
	blocked := `blocked AS (
	SELECT e.transaction_id, e.position FROM events e
	WHERE (e.transaction_id, e.position) > ($14::xid8, $15::bigint) AND ` + cond + `
	LIMIT 1
), checked AS (`
	return mustReplace(mustReplace(mustReplace(EventstoreGroupWave,
		"), checked AS (", "), "+blocked),
		"THEN 'dup'\n", "THEN 'dup'\n\t\t\tWHEN EXISTS (SELECT 1 FROM blocked) THEN 'condition'\n"),
		"SELECT c.status, c.version, i.first, i.tx, i.positions, i.at\n",
		"SELECT c.status, c.version, i.first, i.tx, i.positions, i.at, (SELECT transaction_id FROM blocked), (SELECT position FROM blocked)\n")
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
