package migrations_test

import (
	"context"
	"database/sql"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/migrations"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func pending(t *testing.T, db *sql.DB) bool {
	t.Helper()
	p, err := migrations.Pending(t.Context(), db)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return p
}

// fileVersions returns the version numbers of the embedded migration files (00001_x.sql is 1).
func fileVersions(t *testing.T) []int64 {
	t.Helper()
	names, err := fs.Glob(migrations.FS(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migration files embedded")
	}
	versions := make([]int64, 0, len(names))
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		if !ok {
			t.Fatalf("migration file %s has no version prefix", name)
		}
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			t.Fatalf("migration file %s: %v", name, err)
		}
		versions = append(versions, v)
	}
	return versions
}

// Two servers starting at once must both succeed and apply the schema once. On a fresh database
// they race to create goose's version table; once it exists (any Pending call makes it) they race
// for the migrations themselves, which only the advisory lock keeps apart.
func TestUpTwiceConcurrently(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		versionTable bool // make the version table before the race
	}{
		{"fresh database", false},
		{"version table already made", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := dbtest.EmptyURL(t)
			dbs := []*sql.DB{openDB(t, url), openDB(t, url)}
			if tc.versionTable && !pending(t, dbs[0]) {
				t.Fatal("Pending on an empty database = false, want true")
			}
			upConcurrently(t, dbs)
			checkMigratedOnce(t, dbs[0])
		})
	}
}

// upConcurrently runs Up on every db at the same moment and fails unless each returns nil.
func upConcurrently(t *testing.T, dbs []*sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	gate := make(chan struct{})
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-gate
			errs[i] = migrations.Up(ctx, db, nil)
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Up #%d: %v", i+1, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkMigratedOnce checks that db carries the schema and that every migration is recorded once.
func checkMigratedOnce(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := t.Context()
	if pending(t, db) {
		t.Error("Pending after Up = true, want false")
	}
	for _, table := range []string{"events", "streams"} {
		var exists bool
		if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", "public."+table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s missing after Up", table)
		}
	}

	rows, err := db.QueryContext(ctx, `SELECT version_id, count(*) FROM strata_schema_migrations
		WHERE version_id > 0 AND is_applied GROUP BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	recorded := map[int64]int{}
	for rows.Next() {
		var version int64
		var n int
		if err := rows.Scan(&version, &n); err != nil {
			t.Fatal(err)
		}
		recorded[version] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := fileVersions(t)
	if got := slices.Sorted(maps.Keys(recorded)); !slices.Equal(got, want) {
		t.Errorf("versions recorded = %v, want %v", got, want)
	}
	for version, n := range recorded {
		if n != 1 {
			t.Errorf("version %d recorded %d times, want once", version, n)
		}
	}
}

func TestPendingOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	db := openDB(t, dbtest.EmptyURL(t))
	if !pending(t, db) {
		t.Fatal("Pending on an empty database = false, want true")
	}
	if err := migrations.Up(t.Context(), db, nil); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if pending(t, db) {
		t.Error("Pending after Up = true, want false")
	}
}
