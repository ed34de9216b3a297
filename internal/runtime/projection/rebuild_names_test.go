package projection_test

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/runtime/projection"
)

// relationNames are the names of a table's indexes and constraints, sorted.
type relationNames struct {
	Indexes, Constraints []string
}

// namesOf reads the index and constraint names of each of tables in the current schema.
func namesOf(t *testing.T, pool *pgxpool.Pool, tables []string) map[string]relationNames {
	t.Helper()
	ctx := context.Background()
	names := make(map[string]relationNames, len(tables))
	for _, table := range tables {
		var n relationNames
		if err := pool.QueryRow(ctx, `SELECT
  coalesce((SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename = $1), '{}'),
  coalesce((SELECT array_agg(con.conname::text ORDER BY con.conname) FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relname = $1), '{}')`, table).Scan(&n.Indexes, &n.Constraints); err != nil {
			t.Fatal(err)
		}
		names[table] = n
	}
	return names
}

// A rebuild swaps a copy of the table in, and the copy's indexes and constraints take the names
// the migrations gave, so that a later migration naming them works on a rebuilt database too.
func TestRebuildKeepsIndexAndConstraintNames(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{Batch: 10, Poll: 10 * time.Millisecond})
	ctx := context.Background()
	f.run(t)
	waitAll(t, f, writeDomain(ctx, t, f.cmd, 8))

	var tables []string
	for _, p := range projection.Default() {
		tables = append(tables, p.Name())
	}
	before := namesOf(t, f.pool, tables)
	// What the migrations named, so that the comparison below is not between empty sets.
	for table, want := range map[string][]string{
		"users":       {"users_pkey", "users_status_id"},
		"orders":      {"orders_pkey", "orders_customer_id", "orders_status_id"},
		"order_stats": {"order_stats_pkey", "order_stats_created_at", "order_stats_paid_at", "order_stats_shipped_at", "order_stats_cancelled_at"},
	} {
		for _, name := range want {
			if !slices.Contains(before[table].Indexes, name) {
				t.Fatalf("before any rebuild, %s has indexes %v, without %s", table, before[table].Indexes, name)
			}
		}
		if !slices.Contains(before[table].Constraints, table+"_pkey") {
			t.Fatalf("before any rebuild, %s has constraints %v, without %s_pkey", table, before[table].Constraints, table)
		}
	}

	for round := 1; round <= 2; round++ { // the second rebuilds a table a rebuild swapped in
		for _, table := range tables {
			var oldOID, newOID uint32
			if err := f.pool.QueryRow(ctx, `SELECT $1::regclass::oid`, table).Scan(&oldOID); err != nil {
				t.Fatal(err)
			}
			if err := f.runner.Rebuild(ctx, table, nil); err != nil {
				t.Fatalf("rebuild %d of %s: %v", round, table, err)
			}
			if err := f.pool.QueryRow(ctx, `SELECT $1::regclass::oid`, table).Scan(&newOID); err != nil {
				t.Fatal(err)
			}
			if newOID == oldOID {
				t.Fatalf("rebuild %d of %s left the same table in place", round, table)
			}
		}
		if after := namesOf(t, f.pool, tables); !reflect.DeepEqual(after, before) {
			t.Errorf("after rebuild %d the names are\n%v\nwant\n%v", round, after, before)
		}
	}
	var leftovers int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND (c.relname LIKE '%rebuild%' OR c.relname LIKE '%\_old%')`).Scan(&leftovers); err != nil {
		t.Fatal(err)
	}
	if leftovers != 0 {
		t.Errorf("%d relations of a rebuild left behind", leftovers)
	}

	// What a later migration might run; each in a transaction rolled back.
	for _, stmt := range []string{
		`ALTER INDEX users_status_id RENAME TO users_status_id2`,
		`DROP INDEX orders_status_id`,
		`DROP INDEX orders_customer_id`,
		`DROP INDEX order_stats_paid_at`,
		`ALTER TABLE users DROP CONSTRAINT users_pkey`,
		`ALTER TABLE orders DROP CONSTRAINT orders_pkey`,
		`ALTER TABLE order_stats RENAME CONSTRAINT order_stats_pkey TO order_stats_pkey2`,
	} {
		tx, err := f.pool.BeginTx(ctx, pgx.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Errorf("after the rebuilds, %s: %v", stmt, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// oddUsers is the users projector on a table whose indexes and constraints are harder to tell
// apart than the migrations' are.
type oddUsers struct{ projection.Projector }

func (oddUsers) Name() string { return "odd_users" }

// The names are kept also for what the migrations do not have yet: names that need quoting,
// unique and check constraints, expression, partial, hash and descending indexes, two indexes
// alike, and a table whose columns are numbered differently from its copy's (a dropped column).
func TestRebuildKeepsNamesOfEveryKindOfIndex(t *testing.T) {
	t.Parallel()
	f := newFixture(t, projection.Options{})
	ctx := context.Background()
	last := writeDomain(ctx, t, f.cmd, 4)
	for _, stmt := range []string{
		`CREATE TABLE odd_users (gone int, LIKE users INCLUDING ALL)`,
		`ALTER TABLE odd_users DROP COLUMN gone`,
		`ALTER TABLE odd_users ADD CONSTRAINT "Odd Email" UNIQUE (email)`,
		`ALTER TABLE odd_users ADD CONSTRAINT odd_users_version_positive CHECK (version > 0)`,
		`CREATE INDEX odd_users_lower_email ON odd_users (lower(email))`,
		`CREATE INDEX "Odd Active" ON odd_users (id) WHERE status = 'ACTIVE'`,
		`CREATE INDEX odd_users_status_a ON odd_users (status)`,
		`CREATE INDEX odd_users_status_b ON odd_users (status)`,
		`CREATE INDEX odd_users_status_name ON odd_users (status) INCLUDE (name)`,
		`CREATE INDEX odd_users_name_hash ON odd_users USING hash (name)`,
		`CREATE INDEX odd_users_created_desc ON odd_users (created_at DESC)`,
	} {
		if _, err := f.pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// The table is empty, but its checkpoint at the last event makes a rebuild apply all of them.
	if _, err := f.pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, position) VALUES ('odd_users', $1)`, last.String()); err != nil {
		t.Fatal(err)
	}
	runner := projection.NewRunner(f.pool, f.store, []projection.Projector{oddUsers{Projector: usersProjector(t)}}, projection.Options{}, slog.New(slog.DiscardHandler))
	tables := []string{"odd_users"}
	before := namesOf(t, f.pool, tables)
	if len(before["odd_users"].Indexes) != 10 || len(before["odd_users"].Constraints) != 3 {
		t.Fatalf("odd_users has %+v, want 10 indexes and 3 constraints", before["odd_users"])
	}
	for round := 1; round <= 2; round++ {
		if err := runner.Rebuild(ctx, "odd_users", nil); err != nil {
			t.Fatalf("rebuild %d: %v", round, err)
		}
		if after := namesOf(t, f.pool, tables); !reflect.DeepEqual(after, before) {
			t.Errorf("after rebuild %d the names are\n%v\nwant\n%v", round, after, before)
		}
	}
	// Each name is on the index it was on before: the ones with a definition of their own.
	for name, want := range map[string]string{
		"odd_users_lower_email":  "lower(email)",
		"Odd Active":             "WHERE (status = 'ACTIVE'::text)",
		"odd_users_status_name":  "INCLUDE (name)",
		"odd_users_name_hash":    "USING hash (name)",
		"odd_users_created_desc": "(created_at DESC)",
		"Odd Email":              "UNIQUE INDEX",
	} {
		var def string
		if err := f.pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`, name).Scan(&def); err != nil {
			t.Fatalf("index %s: %v", name, err)
		}
		if !strings.Contains(def, want) {
			t.Errorf("index %s is %s, want one with %s", name, def, want)
		}
	}
	var rows int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM odd_users`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 4 {
		t.Errorf("the rebuilt odd_users has %d rows, want 4", rows)
	}
}
