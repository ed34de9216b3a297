// Package dbtest gives each test an isolated PostgreSQL database with Strata's migrations
// applied: the first test in a run migrates a template database, every test gets a clone of it
// (pgtestdb), and a passing test's database is dropped afterwards.
//
// The server is, in order: TEST_DATABASE_URL when set; else the server on 127.0.0.1:5432 when one
// answers (user postgres); else a private cluster started from the machine's PostgreSQL binaries
// (package pgserver) for the life of the test binary. A test that cannot reach any of them fails:
// tests that need PostgreSQL never skip.
//
// A package using dbtest calls it from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb connects with
	"github.com/peterldowns/pgtestdb"
	"github.com/peterldowns/pgtestdb/migrators/common"
	"go.uber.org/goleak"

	"github.com/strata-es/strata/internal/platform/pgserver"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/migrations"
)

// DefaultURL is the server tried when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// server is the one chosen by Main for this test binary. Tests of one binary share it, so it is
// process state by nature; it is written once, before any test runs.
var server struct { //nolint:gochecknoglobals // set once by Main before tests start
	once   sync.Once
	config pgtestdb.Config
	url    string
	err    error
}

// Main picks the server, runs the tests (stopping them, with a report of where they wait, a minute
// before go test's -timeout: startWatchdog), checks that they left no goroutine behind, stops a
// private cluster if it started one, and exits.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var (
		private    *pgserver.Server
		privateDir string
	)
	server.once.Do(func() {
		adminURL, srv, dir, err := chooseServer(ctx)
		private, privateDir = srv, dir
		if err != nil {
			server.err = err
			return
		}
		server.url = adminURL
		server.config, server.err = configFromURL(adminURL)
	})
	stopWatchdog := startWatchdog(os.Stderr)
	code := m.Run()
	stopWatchdog()
	if code == 0 {
		// Every test closed what it opened: pools, servers, goroutines of its own.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: goroutines left behind after the tests: %v\n", err)
			code = 1
		}
	}
	if private != nil {
		stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := private.Stop(stopCtx); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: stop private cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		_ = os.RemoveAll(privateDir)
	}
	return code
}

// chooseServer returns the admin URL of the server to use and, when it started a private
// cluster, that cluster and the directory to remove after it stops.
func chooseServer(ctx context.Context) (string, *pgserver.Server, string, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if err := ping(ctx, u); err != nil {
			return "", nil, "", fmt.Errorf("TEST_DATABASE_URL does not answer: %w", err)
		}
		return u, nil, "", nil
	}
	if ping(ctx, DefaultURL) == nil {
		return DefaultURL, nil, "", nil
	}
	dir, err := reachableTempDir("strata-test-pg-")
	if err != nil {
		return "", nil, "", fmt.Errorf("private cluster: %w", err)
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{
		Dir: dir + "/data",
		// Durability is not under test here; speed is welcome.
		Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "300"},
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, "", fmt.Errorf("no PostgreSQL at TEST_DATABASE_URL or %s, and no private cluster: %w", DefaultURL, err)
	}
	return srv.URL("postgres"), srv, dir, nil
}

// reachableTempDir makes an empty temporary directory that the postgres user can enter: when
// tests run as root a private cluster runs as that user, and MkdirTemp makes the directory
// private to its creator.
func reachableTempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // meant to be entered by the server's user
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// TempDir returns an empty directory, removed after the test, in which a private cluster can
// keep its data even when the tests run as root.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := reachableTempDir("strata-test-")
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return conn.Ping(ctx)
}

func configFromURL(u string) (pgtestdb.Config, error) {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("parse %s: %w", u, err)
	}
	return pgtestdb.Config{
		DriverName: "pgx",
		Host:       cfg.Host,
		Port:       strconv.Itoa(int(cfg.Port)),
		User:       cfg.User,
		Password:   cfg.Password,
		Database:   cfg.Database,
		Options:    "sslmode=disable",
	}, nil
}

func serverConfig(t testing.TB) pgtestdb.Config {
	t.Helper()
	if server.err != nil {
		t.Fatalf("dbtest: %v", server.err)
	}
	if server.config.DriverName == "" {
		t.Fatalf("dbtest: no server chosen; call dbtest.Main from TestMain")
	}
	return server.config
}

// URL returns the connection URL of a fresh, migrated database for this test.
func URL(t testing.TB) string {
	t.Helper()
	return pgtestdb.Custom(t, serverConfig(t), migrator{}).URL()
}

// EmptyURL returns the connection URL of a fresh database with no migrations applied.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return pgtestdb.Custom(t, serverConfig(t), pgtestdb.NoopMigrator{}).URL()
}

// AdminURL returns the URL of the server's administrative database, for tests that make
// databases of their own.
func AdminURL(t testing.TB) string {
	t.Helper()
	serverConfig(t)
	return server.url
}

// Pool returns a pool on a fresh, migrated database for this test, closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolFor(t, URL(t), 0)
}

// PoolFor returns a pool on u with at most maxConns connections (0: pgxpool's default), closed
// when the test ends.
func PoolFor(t testing.TB, u string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		t.Fatalf("dbtest: %v", err) // pgconn's parse errors hide the password themselves
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	eventstore.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrator applies Strata's migrations to pgtestdb's template database; its hash changes with
// the migration files, so a changed schema gets a new template.
type migrator struct{}

func (migrator) Hash() (string, error) { return common.HashDirs(migrations.FS(), "*.sql", ".") }

func (migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	return migrations.Up(ctx, db, nil)
}

// PgBouncer starts PgBouncer in transaction pooling mode in front of the server of u (a URL of
// URL's), stopped when the test ends, and returns u through it: the same database, user and
// password, on the pooler's port. The test fails when Debian's pgbouncer is not installed.
func PgBouncer(t testing.TB, u string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	b, err := pgserver.StartPgBouncer(context.Background(), pgserver.BouncerOptions{
		Upstream: u,
		Dir:      TempDir(t),
		Users:    map[string]string{cfg.User: cfg.Password},
	})
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("dbtest: %v", err)
		}
		if t.Failed() {
			t.Logf("pgbouncer's log ends with:\n%s", b.Log())
		}
	})
	return b.URL(cfg.Database, cfg.User, cfg.Password)
}
