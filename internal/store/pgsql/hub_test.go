package pgsql_test

import (
	"context"
	"testing"

	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// TestHubListenListens runs HubListen, which no prepared statement covers, and finds the
// session listening on the channel, named as given.
func TestHubListenListens(t *testing.T) {
	ctx := context.Background()
	conn, err := dbtest.Pool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, channel := range []string{"strata_events", `Odd "channel"`} {
		if _, err := conn.Exec(ctx, pgsql.HubListen(channel)); err != nil {
			t.Fatalf("%s: %v", pgsql.HubListen(channel), err)
		}
		var listening bool
		if err := conn.QueryRow(ctx, `SELECT $1 = ANY(ARRAY(SELECT pg_listening_channels()))`, channel).Scan(&listening); err != nil {
			t.Fatal(err)
		}
		if !listening {
			t.Errorf("%s: not listening on %q", pgsql.HubListen(channel), channel)
		}
	}
	if _, err := conn.Exec(ctx, `UNLISTEN *`); err != nil {
		t.Fatal(err)
	}
}
