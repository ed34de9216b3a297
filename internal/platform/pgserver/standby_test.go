package pgserver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/platform/pgserver"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// startStandby starts a hot standby of primary in dir and stops it when the test ends.
func startStandby(t *testing.T, primary *pgserver.Server, dir string) *pgserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := pgserver.StartStandby(ctx, primary, pgserver.Options{Dir: dir, Logger: testLogger(t), Settings: testSettings()})
	if err != nil {
		t.Fatalf("start standby: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop standby: %v", err)
		}
	})
	return srv
}

func TestStandbyFollowsPrimaryAndRefusesWrites(t *testing.T) {
	t.Parallel()
	primary := start(t, filepath.Join(dbtest.TempDir(t), "primary"))
	dir := filepath.Join(dbtest.TempDir(t), "standby")
	standby := startStandby(t, primary, dir)
	if standby.Port() == primary.Port() {
		t.Fatalf("standby listens on the primary's port %d", primary.Port())
	}

	pc, sc := connect(t, primary), connect(t, standby)
	var recovering bool
	if err := sc.QueryRow(t.Context(), `SELECT pg_is_in_recovery()`).Scan(&recovering); err != nil || !recovering {
		t.Fatalf("standby in recovery = %v (%v), want true", recovering, err)
	}
	if _, err := pc.Exec(t.Context(), `CREATE TABLE notes (note text); INSERT INTO notes VALUES ('replicated')`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var note string
		err := sc.QueryRow(t.Context(), `SELECT note FROM notes`).Scan(&note)
		if err == nil && note == "replicated" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby did not show the primary's row within 15s: %q, %v", note, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := sc.Exec(t.Context(), `INSERT INTO notes VALUES ('on the standby')`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
		t.Errorf("write on the standby: %v, want read_only_sql_transaction", err)
	}

	log, err := os.ReadFile(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "The files belonging to this database system") {
		t.Error("the standby's log starts with the primary's initdb output: the copied log was kept")
	}
}

func TestStandbyOfUnreachablePrimaryExplains(t *testing.T) {
	t.Parallel()
	primary := start(t, filepath.Join(dbtest.TempDir(t), "primary"))
	stop(t, primary)
	dir := filepath.Join(dbtest.TempDir(t), "standby")
	_, err := pgserver.StartStandby(t.Context(), primary, pgserver.Options{Dir: dir, Settings: testSettings()})
	if err == nil || !strings.Contains(err.Error(), "pg_basebackup") {
		t.Fatalf("StartStandby of a stopped primary: %v, want a pg_basebackup error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		t.Error("a failed base backup left PG_VERSION behind")
	}
}
