package pgsql

import (
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Statements of bench.sql.
var (
	// BenchShippedOrders counts the shipped orders of the orders projection.
	BenchShippedOrders = get("BenchShippedOrders")
	// BenchStatsIndex builds migration 8's index on events' recorded_at.
	BenchStatsIndex = get("BenchStatsIndex")
	// BenchStatsDropIndex drops migration 8's index, before the log is filled.
	BenchStatsDropIndex = get("BenchStatsDropIndex")
	// BenchVacuum vacuums and analyzes events.
	BenchVacuum = get("BenchVacuum")
	// BenchStatsCount counts the events recorded in [$1, $2), and those of category order.
	BenchStatsCount = get("BenchStatsCount")
	// BenchStatsPartitions makes the partitions that $1 more events need.
	BenchStatsPartitions = get("BenchStatsPartitions")
	// BenchStatsInsert inserts the events numbered $1 to $2 of $5, recorded evenly over
	// [$3, $4), and their ids.
	BenchStatsInsert = get("BenchStatsInsert")
	// BenchClearStatsSnapshot drops the session's cached statistics snapshot.
	BenchClearStatsSnapshot = get("BenchClearStatsSnapshot")
	// BenchXactCommits reads the transactions committed in database $1 (pg_stat_database).
	BenchXactCommits = get("BenchXactCommits")
	// BenchBackends lists the process ids of the backends connected to database $1.
	BenchBackends = get("BenchBackends")
)

// BenchDropDatabase drops the scratch database name, if it exists, even with sessions on it.
func BenchDropDatabase(name string) string {
	return "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
}

// BenchCreateDatabase makes the scratch database name.
func BenchCreateDatabase(name string) string {
	return "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
}

// BenchExplainStats explains the statement of the event statistics (eventstore.Stats) for an
// hourly count of the events recorded in [from, to), of category or all (""). The values are
// written into the text, so that the plan is the one PostgreSQL makes for them.
func BenchExplainStats(from, to time.Time, category string) string {
	filter := ""
	if category != "" {
		filter = "\n  AND e.category = '" + strings.ReplaceAll(category, "'", "''") + "'"
	}
	return `EXPLAIN SELECT date_bin('1 hour', e.recorded_at, timestamptz '2000-01-03 00:00:00+00') AS bucket, e.type, count(*)
FROM events e
WHERE e.recorded_at >= '` + from.Format(time.RFC3339) + `' AND e.recorded_at < '` + to.Format(time.RFC3339) + `'
  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())` + filter + `
GROUP BY 1, 2`
}
