package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/eventstore"
	"github.com/strata-es/strata/internal/pgserver"
	"github.com/strata-es/strata/migrations"
)

// database is the PostgreSQL a process works on: a pool, and the private cluster behind it when
// no DATABASE_URL was given.
type database struct {
	url     string
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

// openDatabase connects to cfg's server (starting the private cluster if need be) and applies
// pending migrations.
func openDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger) (db *database, err error) {
	url, cluster, err := startCluster(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	db = &database{url: url, cluster: cluster}
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
	if db.pool, err = pgxpool.NewWithConfig(ctx, poolCfg); err != nil {
		return db, fmt.Errorf("connect: %w", err)
	}
	if err := db.pool.Ping(ctx); err != nil {
		return db, fmt.Errorf("connect to %s: %w", describeDB(url), err)
	}
	if err := applyMigrations(ctx, db.pool, logger); err != nil {
		return db, err
	}
	if cfg.ReadDatabaseURL != "" {
		if db.replica, err = openReplica(ctx, cfg, logger); err != nil {
			return db, err
		}
	}
	return db, nil
}

// applyMigrations applies pending migrations through a database/sql view of the pool.
func applyMigrations(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer func() { _ = sqlDB.Close() }()
	return migrations.Up(ctx, sqlDB, logger)
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
