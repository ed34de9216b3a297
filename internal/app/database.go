package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	metricnoop "go.opentelemetry.io/otel/metric/noop"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/pgserver"
	"github.com/strata-es/strata/internal/platform/telemetry"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/migrations"
)

// database is the PostgreSQL a process works on: a pool, and the private cluster behind it when
// no DATABASE_URL was given.
type database struct {
	url     string
	session string // the URL of session work: LISTEN, leadership, migrations (config.SessionURL)
	pool    *pgxpool.Pool
	replica *pgxpool.Pool    // nil without --read-database-url
	cluster *pgserver.Server // nil with DATABASE_URL
}

// startCluster starts the private cluster when cfg names no server and returns the URL to use.
func startCluster(ctx context.Context, cfg config.Config, logger *slog.Logger) (string, *pgserver.Server, error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil, nil
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return "", nil, fmt.Errorf("data dir: %w", err)
	}
	logger.InfoContext(ctx, "no DATABASE_URL: starting a private postgres cluster", "dir", filepath.Join(dir, "postgres"))
	cluster, err := pgserver.Start(ctx, pgserver.Options{
		Dir:     filepath.Join(dir, "postgres"),
		LogFile: filepath.Join(dir, "postgres.log"),
		Logger:  logger,
	})
	if err != nil {
		return "", nil, err
	}
	return cluster.URL("postgres"), cluster, nil
}

// postgres is startCluster for the bench commands: the URL of cfg's server, and a function that
// stops the private cluster if one was started.
func postgres(ctx context.Context, cfg config.Config, logger *slog.Logger) (string, func(), error) {
	url, cluster, err := startCluster(ctx, cfg, logger)
	if err != nil {
		return "", nil, err
	}
	db := &database{cluster: cluster}
	return url, func() { db.close(context.WithoutCancel(ctx), cfg, logger) }, nil
}

// openDatabase connects to cfg's server (starting the private cluster if need be) and applies
// pending migrations.
func openDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger) (db *database, err error) {
	return openTracedDatabase(ctx, cfg, logger, nil)
}

// openTracedDatabase is openDatabase with the pools' statements traced when tracing is on (nil:
// off). Off, the pools get no tracer at all: pgx then does nothing per statement for it.
func openTracedDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger, tracing *telemetry.Tracing) (db *database, err error) {
	url, cluster, err := startCluster(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	db = &database{url: url, session: cfg.SessionURL(), cluster: cluster}
	if cluster != nil {
		db.session = url
	}
	defer func() {
		if err != nil {
			db.close(context.WithoutCancel(ctx), cfg, logger)
		}
	}()
	poolCfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return db, fmt.Errorf("database url: %w", err)
	}
	poolCfg.MaxConns = int32(min(cfg.DBMaxConns, 1<<16)) //nolint:gosec // bounded just above
	eventstore.ConfigurePool(poolCfg)
	traceSQL(poolCfg, tracing)
	if db.pool, err = pgxpool.NewWithConfig(ctx, poolCfg); err != nil {
		return db, fmt.Errorf("connect: %w", err)
	}
	if err := db.pool.Ping(ctx); err != nil {
		return db, fmt.Errorf("connect to %s: %w%s", config.DescribeDB(url), err, startupParameterHint(err))
	}
	if err := checkIsolation(ctx, db.pool); err != nil {
		return db, err
	}
	if err := db.migrate(ctx, logger); err != nil {
		return db, err
	}
	if cfg.ReadDatabaseURL != "" {
		if db.replica, err = openReplica(ctx, cfg, logger, tracing); err != nil {
			return db, err
		}
	}
	return db, nil
}

// traceSQL has the pool trace its statements, batches, connection attempts and waits for a
// connection (otelpgx), as children of the span in the context they run with; a statement run
// outside any span (the projectors' polls, the feed's reads) makes none. The SQL text, with its
// placeholders, is a span attribute; arguments, which hold event payloads, are not.
func traceSQL(cfg *pgxpool.Config, tracing *telemetry.Tracing) {
	if tracing == nil || !tracing.Enabled() {
		return
	}
	cfg.ConnConfig.Tracer = otelpgx.NewTracer(
		otelpgx.WithTracerProvider(tracing.Provider()),
		otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus's (internal/platform/metrics)
	)
}

// migrate applies pending migrations on the session URL: goose holds its lock on a session of
// its own, which a pooler in transaction mode would share with other clients.
func (db *database) migrate(ctx context.Context, logger *slog.Logger) error {
	connCfg, err := pgx.ParseConfig(db.session)
	if err != nil {
		return fmt.Errorf("listen database url: %w", err)
	}
	sqlDB := stdlib.OpenDB(*connCfg)
	defer func() { _ = sqlDB.Close() }()
	return migrations.Up(ctx, sqlDB, logger)
}

// connect opens a connection of its own on the session URL, named for pg_stat_activity. The
// server is asked to probe the client every few seconds, so that the session of a machine that
// vanished (its locks with it) ends within about half a minute rather than the system's two
// hours.
func (db *database) connect(name string) func(context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(db.session)
		if err != nil {
			return nil, fmt.Errorf("listen database url: %w", err)
		}
		cfg.RuntimeParams["application_name"] = name
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		// Set after connecting rather than as startup parameters, which poolers refuse: the
		// session check must get as far as saying what is wrong with a pooled URL.
		if _, err := conn.Exec(ctx, pgsql.AppKeepalives); err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("set keepalives: %w", err)
		}
		return conn, nil
	}
}

// checkIsolation makes sure the pool's sessions run READ COMMITTED (eventstore.ConfigurePool):
// behind a pooler that drops the startup parameter (PgBouncer's ignore_startup_parameters), the
// server's default applies, and appends must not run under another level.
func checkIsolation(ctx context.Context, pool *pgxpool.Pool) error {
	var level string
	if err := pool.QueryRow(ctx, pgsql.AppIsolation).Scan(&level); err != nil {
		return fmt.Errorf("read default_transaction_isolation: %w", err)
	}
	if level != "read committed" {
		return fmt.Errorf("the database's sessions default to %s isolation, and Strata's appends need read committed: "+
			"the pooler in front of it dropped the setting Strata asks for; make it the database's default "+
			"(ALTER DATABASE ... SET default_transaction_isolation = 'read committed')", level)
	}
	return nil
}

// startupParameterHint explains PgBouncer's refusal of the startup parameter Strata sends.
func startupParameterHint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Message, "unsupported startup parameter") {
		return " (a pooler in front of PostgreSQL refuses the parameter; for PgBouncer, add " +
			"ignore_startup_parameters = default_transaction_isolation to its configuration: Strata then checks the server's default)"
	}
	return ""
}

// close stops the pool, then the cluster: the reverse of opening.
func (db *database) close(ctx context.Context, cfg config.Config, logger *slog.Logger) {
	if db.replica != nil {
		db.replica.Close()
	}
	if db.pool != nil {
		db.pool.Close()
	}
	if db.cluster != nil {
		stopCtx, cancel := context.WithTimeout(ctx, cfg.ShutdownTimeout)
		defer cancel()
		if err := db.cluster.Stop(stopCtx); err != nil { // pgserver logs a clean stop itself
			logger.ErrorContext(ctx, "stop private postgres cluster", "err", err)
		}
	}
}

// clusterDone is closed when the private cluster exits; it never closes without one.
func (db *database) clusterDone() <-chan struct{} {
	if db.cluster == nil {
		return nil
	}
	return db.cluster.Done()
}

var errClusterExited = errors.New("private postgres cluster exited")
