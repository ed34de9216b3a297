package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/bench"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/eventstore"
)

// benchCmd runs `strata bench append`: it makes a scratch database on the server, migrates it,
// appends for a while, prints one JSON line on stdout and drops the scratch database again.
func benchCmd(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] != "append" {
		fmt.Fprintln(env.stderr, "usage: strata bench append [--writers C] [--batch B] [--duration T] [--hot N] (strata bench append --help lists every flag)")
		return errUsage
	}
	var opts bench.AppendOptions
	var scratch string
	cfg, _, err := parse(env, "bench append", args[1:], func(_ *config.Config, f *config.FlagSet) {
		f.Int(&opts.Writers, "writers", "STRATA_BENCH_WRITERS", 8, "concurrent writers")
		f.Int(&opts.Batch, "batch", "STRATA_BENCH_BATCH", 1, "events per append")
		f.Duration(&opts.Duration, "duration", "STRATA_BENCH_DURATION", 10*time.Second, "how long to measure")
		f.Int(&opts.Hot, "hot", "STRATA_BENCH_HOT", 0, "append to this many shared streams with expected versions (conflicts happen); 0 = a fresh stream per append")
		f.String(&scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "database made afresh on the server for the run and dropped after it")
	})
	if err != nil {
		return err
	}
	logger := newLogger(cfg, env.stderr)
	serverURL, cluster, err := startCluster(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if cluster != nil {
		defer (&database{cluster: cluster}).close(context.WithoutCancel(ctx), cfg, logger)
	}
	benchURL, drop, err := scratchDatabase(ctx, serverURL, scratch)
	if err != nil {
		return err
	}
	defer drop()

	poolCfg, err := pgxpool.ParseConfig(benchURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	poolCfg.MaxConns = int32(min(opts.Writers, 1<<15)) //nolint:gosec // bounded
	poolCfg.MinConns = poolCfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := applyMigrations(ctx, pool, nil); err != nil {
		return err
	}
	if err := warmUp(ctx, pool, int(poolCfg.MaxConns)); err != nil {
		return err
	}
	opts.Progress = env.stderr
	res, runErr := bench.Append(ctx, eventstore.New(pool, cfg.StoreOptions()), opts)
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, string(line))
	return runErr
}

// warmUp opens every pool connection before the clock starts.
func warmUp(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("warm up: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
}

// scratchDatabase (re)creates the database name on the server at serverURL and returns its URL
// and a function that drops it. An empty name benchmarks the server's own database in place.
func scratchDatabase(ctx context.Context, serverURL, name string) (string, func(), error) {
	if name == "" {
		return serverURL, func() {}, nil
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redactURL(serverURL), err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	exec := func(ctx context.Context, sql string) error {
		_, err := conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		_ = conn.Close(ctx)
		return "", nil, fmt.Errorf("scratch database: %w", err)
	}
	if err := exec(ctx, "CREATE DATABASE "+ident); err != nil {
		_ = conn.Close(ctx)
		return "", nil, fmt.Errorf("scratch database: %w", err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		_ = conn.Close(ctx)
		return "", nil, fmt.Errorf("database url: %w", err)
	}
	u.Path = "/" + name
	drop := func() {
		c := context.WithoutCancel(ctx)
		_ = exec(c, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		_ = conn.Close(c)
	}
	return u.String(), drop, nil
}
