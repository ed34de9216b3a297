// Package benchcmd is `strata bench`: the append, GraphQL, read, subscription, replay, projection
// and statistics benchmarks, each run on a scratch database it makes and drops again (or against a
// server already running, for those that take --url), printing one JSON line on stdout.
package benchcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/partition"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/testsupport/bench"
	"github.com/strata-es/strata/internal/transport/cli"
	"github.com/strata-es/strata/migrations"
)

const benchUsage = `usage: strata bench append [--writers C] [--batch B] [--duration T | --appends N] [--hot N]
       strata bench graphql [--writers C] [--batch B] [--duration T | --appends N] [--hot N] [--url URL | --replicas N]
       strata bench read [--writers C] [--duration T | --appends N] [--orders K] [--url URL] [--stats-wait D]
       strata bench subscribe [--url URL] [--stream-subscribers N] [--all-subscribers M] [--rate R] [--duration T]
       strata bench replay [--events N] [--rounds R] [--every N]
       strata bench project [--orders N]
       strata bench stats [--events N] [--days D] [--query-days Q] [--rounds R]
(strata bench <name> --help lists every flag)`

// Postgres returns the URL of the PostgreSQL server cfg names, starting the private cluster when
// it names none (as `strata serve` does), and a function that stops what it started.
type Postgres func(ctx context.Context, cfg config.Config, logger *slog.Logger) (url string, stop func(), err error)

// Run runs `strata bench args...`: one of the benchmarks in benchUsage, on the server pg gives.
// A command line it cannot understand is an error wrapping cli.ErrUsage.
func Run(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	switch {
	case len(args) > 0 && args[0] == "append":
		return benchAppendCmd(ctx, env, pg, args[1:])
	case len(args) > 0 && args[0] == "graphql":
		return benchGraphQLCmd(ctx, env, pg, args[1:])
	case len(args) > 0 && args[0] == "read":
		return benchReadCmd(ctx, env, pg, args[1:])
	case len(args) > 0 && args[0] == "subscribe":
		return benchSubscribeCmd(ctx, env, pg, args[1:])
	case len(args) > 0 && args[0] == "replay":
		return benchReplayCmd(ctx, env, pg, args[1:])
	case len(args) > 0 && args[0] == "project":
		return benchProjectCmd(ctx, env, pg, args[1:])
	case len(args) > 0 && args[0] == "stats":
		return benchStatsCmd(ctx, env, pg, args[1:])
	}
	fmt.Fprintln(env.Stderr, benchUsage)
	return cli.ErrUsage
}

// cleanups are undone last first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}

// scratchServer makes a fresh scratch database on the server pg gives for cfg (a private cluster
// when DATABASE_URL is unset) and returns the server's URL and a pool configuration for the
// database; undo drops the database and stops the cluster, in that order.
func scratchServer(ctx context.Context, pg Postgres, cfg config.Config, logger *slog.Logger, scratch string) (serverURL string, poolCfg *pgxpool.Config, undo *cleanups, err error) {
	undo = &cleanups{}
	serverURL, stop, err := pg(ctx, cfg, logger)
	if err != nil {
		return "", nil, nil, err
	}
	undo.add(stop)
	poolCfg, drop, err := scratchDatabase(ctx, serverURL, scratch)
	if err != nil {
		undo.run()
		return "", nil, nil, err
	}
	undo.add(drop)
	return serverURL, poolCfg, undo, nil
}

// scratchPool makes a fresh, migrated scratch database (scratchServer) and returns a pool on
// it, tuned by tune; cleanup closes the pool, drops the database and stops the cluster, in
// that order.
func scratchPool(ctx context.Context, pg Postgres, cfg config.Config, logger *slog.Logger, scratch string, tune func(*pgxpool.Config)) (*pgxpool.Pool, func(), error) {
	_, poolCfg, undo, err := scratchServer(ctx, pg, cfg, logger, scratch)
	if err != nil {
		return nil, nil, err
	}
	cleanup := undo.run
	eventstore.ConfigurePool(poolCfg)
	if tune != nil {
		tune(poolCfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	undo.add(pool.Close)
	if err := applyMigrations(ctx, pool); err != nil {
		cleanup()
		return nil, nil, err
	}
	return pool, cleanup, nil
}

// applyMigrations applies pending migrations through a database/sql view of pool (a direct one:
// a scratch database).
func applyMigrations(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer func() { _ = sqlDB.Close() }()
	return migrations.Up(ctx, sqlDB, nil)
}

// benchAppendCmd runs `strata bench append`: it makes a scratch database on the server, migrates
// it, appends for a while, prints one JSON line on stdout and drops the scratch database again.
func benchAppendCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	var opts bench.AppendOptions
	var scratch string
	cfg, _, err := cli.Parse(env, "bench append", args, func(_ *config.Config, f *config.FlagSet) {
		appendFlags(f, &opts, 8)
		f.String(&scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "database made afresh on the server for the run and dropped after it")
	})
	if err != nil {
		return err
	}
	if err := validOptions(env, opts); err != nil {
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	conns := int32(min(opts.Writers, 1<<15)) //nolint:gosec // bounded
	pool, cleanup, err := scratchPool(ctx, pg, cfg, logger, scratch, func(c *pgxpool.Config) {
		c.MaxConns, c.MinConns = conns, conns
	})
	if err != nil {
		return err
	}
	defer cleanup()
	if err := warmUp(ctx, pool, int(conns)); err != nil {
		return err
	}
	opts.Progress = env.Stderr
	// Partitions are kept ahead as the server keeps them, so a long run never runs out.
	keepCtx, stopKeeping := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		_ = partition.New(pool, int64(cfg.PartitionSize), logger).Run(keepCtx) // logs its failures itself
	}()
	res, runErr := bench.Append(ctx, eventstore.New(pool, cfg.StoreOptions()), opts)
	stopKeeping()
	<-kept
	return printResult(env, res, runErr)
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

// scratchDatabase (re)creates the database name on the server at serverURL and returns a pool
// configuration for it and a function that drops it. An empty name benchmarks the server's own
// database in place.
func scratchDatabase(ctx context.Context, serverURL, name string) (*pgxpool.Config, func(), error) {
	poolCfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		return nil, nil, fmt.Errorf("database url: %w", err)
	}
	if name == "" {
		return poolCfg, func() {}, nil
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", config.DescribeDB(serverURL), err)
	}
	drop := func(ctx context.Context) error {
		_, err := conn.Exec(ctx, pgsql.BenchDropDatabase(name))
		return err
	}
	if err := drop(ctx); err != nil {
		_ = conn.Close(ctx)
		return nil, nil, fmt.Errorf("scratch database: %w", err)
	}
	if _, err := conn.Exec(ctx, pgsql.BenchCreateDatabase(name)); err != nil {
		_ = conn.Close(ctx)
		return nil, nil, fmt.Errorf("scratch database: %w", err)
	}
	poolCfg.ConnConfig.Database = name
	cleanup := func() {
		c := context.WithoutCancel(ctx)
		_ = drop(c)
		_ = conn.Close(c)
	}
	return poolCfg, cleanup, nil
}

// benchGraphQLCmd runs the append benchmark through the GraphQL API over HTTP: against --url,
// or against `strata serve` started on a scratch database with this command's settings
// (--group-commit among them).
func benchGraphQLCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	var opts bench.AppendOptions
	var served servedFlags
	var replicas int
	cfg, _, err := cli.Parse(env, "bench graphql", args, func(_ *config.Config, f *config.FlagSet) {
		appendFlags(f, &opts, 64)
		f.Int(&replicas, "replicas", "STRATA_BENCH_REPLICAS", 1, "without --url: how many servers to start on the scratch database; writers are spread over them in turn")
		served.register(f, "append")
	})
	if err != nil {
		return err
	}
	if err := validOptions(env, opts); err != nil {
		return err
	}
	if err := served.check(env); err != nil {
		return err
	}
	if replicas < 1 || served.url != "" && replicas != 1 {
		fmt.Fprintln(env.Stderr, "--replicas must be at least 1, and is only for servers this command starts (no --url)")
		return fmt.Errorf("%w: --replicas %d", cli.ErrUsage, replicas)
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	urls := []string{served.url}
	var probe *costProbe // what the appends cost, measured when the servers are this command's
	if served.url == "" {
		var stop func()
		if urls, probe, stop, err = served.start(ctx, env, pg, cfg, logger, replicas); err != nil {
			return err
		}
		defer stop()
		if err := probe.beforeRun(ctx); err != nil {
			return err
		}
	}
	transport := &http.Transport{MaxIdleConns: opts.Writers, MaxIdleConnsPerHost: opts.Writers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	appenders := make([]bench.Appender, len(urls))
	for i, u := range urls {
		appenders[i] = bench.GraphQLAppender{URL: u, Client: client}
	}
	opts.Progress, opts.Category = env.Stderr, "bench"
	res := graphqlResult{}
	var runErr error
	res.AppendResult, runErr = bench.Append(ctx, bench.NewRoundRobin(appenders...), opts)
	if probe != nil && ctx.Err() == nil {
		var err error
		costs, err := probe.afterRun(ctx, res.Appends, "append")
		if err != nil {
			runErr = errors.Join(runErr, err)
		}
		res.appendCosts = costs.perAppend()
	}
	return printResult(env, res, runErr)
}

// printResult prints a benchmark's result as one JSON line on stdout, and returns runErr: a
// run that failed part-way still shows what it measured.
func printResult(env *cli.Env, res any, runErr error) error {
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, string(line))
	return runErr
}

// appendFlags registers the flags of the append benchmarks (bench append, bench graphql).
func appendFlags(f *config.FlagSet, opts *bench.AppendOptions, writers int) {
	f.Int(&opts.Writers, "writers", "STRATA_BENCH_WRITERS", writers, "concurrent writers")
	f.Int(&opts.Batch, "batch", "STRATA_BENCH_BATCH", 1, "events per append")
	f.Duration(&opts.Duration, "duration", "STRATA_BENCH_DURATION", 10*time.Second, "how long to measure (when --appends is 0)")
	f.Int(&opts.Count, "appends", "STRATA_BENCH_APPENDS", 0, "stop after this many appends in all, over all writers, whatever --duration says; 0 = run for --duration")
	f.Int(&opts.Hot, "hot", "STRATA_BENCH_HOT", 0, "append to this many shared streams with expected versions (conflicts happen); 0 = a fresh stream per append")
}

// validOptions checks a benchmark's options, printing what is wrong as a usage error.
func validOptions(env *cli.Env, opts interface{ Validate() error }) error {
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	return nil
}
