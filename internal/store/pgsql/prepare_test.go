package pgsql_test

import (
	"context"
	"sort"
	"testing"

	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestEveryStatementPrepares parses and plans every statement against a migrated database, so
// one that names a table or column the migrations do not make, or that is not SQL at all, fails
// here. Statements PostgreSQL does not plan (LISTEN, DDL, ...) are parsed only.
func TestEveryStatementPrepares(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.Pool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	named := pgsql.Named()
	names := make([]string, 0, len(named))
	for name := range named {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no statements loaded")
	}
	for _, name := range names {
		if _, err := conn.Conn().Prepare(ctx, "", named[name]); err != nil {
			t.Errorf("%s: %v\n%s", name, err, named[name])
		}
	}
}
