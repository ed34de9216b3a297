package pgsql_test

import (
	"context"
	"testing"

	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// TestBuiltStatementsPrepare prepares the statements built from identifiers, on tables the
// migrations make (users for a read model, order_stats), as TestEveryStatementPrepares does for
// the fixed ones. DDL is parsed only.
func TestBuiltStatementsPrepare(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.Pool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	names := []string{"id", "name", "email", "status", "version"}
	fields := []string{"ID", "Name", "Email", "Status", "Version"}
	columns := []string{"id", "version", "name", "email", "status"}
	row := pgsql.ReadmodelRow(names, fields)
	list := pgsql.ReadmodelList("users", row)
	built := []string{
		pgsql.ReadmodelGet("users", row),
		pgsql.ReadmodelUpsert("users", columns, names, fields),
		pgsql.ReadmodelRemove("users"),
		pgsql.ReadmodelByID("users", row),
		list,
		pgsql.ReadmodelListPage(list, nil),
		pgsql.ReadmodelListPage(list, []string{pgsql.ReadmodelEquals("status", 3), pgsql.ReadmodelContains("email", 4)}),
		pgsql.ReadmodelListBy("users", row, "status"),
		pgsql.ProjectionOrderStatsDelete("order_stats"),
		pgsql.ProjectionOrderStatsVersion("order_stats"),
		pgsql.ProjectionOrderStatsCreated("order_stats"),
		pgsql.ProjectionOrderStatsPaid("order_stats"),
		pgsql.ProjectionOrderStatsShipped("order_stats"),
		pgsql.ProjectionOrderStatsCancelled("order_stats"),
		pgsql.ProjectionOrderStatsMoved("order_stats"),
		pgsql.ProjectionDropCopy("users_rebuild"),
		pgsql.ProjectionCreateCopy("users_rebuild", "users"),
		pgsql.ProjectionRenameConstraint("public", "users", "a", "b"),
		pgsql.ProjectionRenameIndex("public", "a", "b"),
	}
	for _, items := range [][]pgsql.MatchItem{
		nil,
		{{Types: true}},
		{{Tags: true}},
		{{}},
		{{Types: true, Tags: true}, {Tags: true}, {}},
	} {
		built = append(built, pgsql.EventstoreReadQuery(items), pgsql.EventstoreLastMatch(items))
	}
	built = append(built, pgsql.EventstoreGroupWaveIf, pgsql.EventstoreGroupWaveIfTagged)
	built = append(built, pgsql.ProjectionSwapTables("users", "users_rebuild", "users_old")...)
	for _, sql := range built {
		if _, err := conn.Conn().Prepare(ctx, "", sql); err != nil {
			t.Errorf("%v\n%s", err, sql)
		}
	}
}
