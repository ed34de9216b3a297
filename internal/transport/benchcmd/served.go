package benchcmd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/transport/cli"
)

// servedFlags are the flags of a benchmark of the GraphQL API (bench graphql, bench read): the
// server to measure (--url), or the servers it starts on a scratch database and whose costs
// it then measures (costProbe).
type servedFlags struct {
	url, bin, scratch string
	statsWait         time.Duration
}

// register adds the flags; per names the operation the costs are given per ("append").
func (s *servedFlags) register(f *config.FlagSet, per string) {
	f.Duration(&s.statsWait, "stats-wait", "STRATA_BENCH_STATS_WAIT", DefaultStatsWait, "without --url: how long to wait for PostgreSQL's statistics before and after the run, for pg_xact_per_"+per+" (PostgreSQL 15 may hold a backend's counters for 10 s)")
	f.String(&s.url, "url", "STRATA_BENCH_URL", "", "the server's HTTP base (http://host:port); empty starts strata serve on a scratch database")
	f.String(&s.bin, "server-bin", "STRATA_BENCH_SERVER_BIN", "", "without --url: the strata binary to start the server with; empty is this one")
	f.String(&s.scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "without --url: database made afresh on the server for the run and dropped after it")
}

// check refuses values the flags cannot take, as a usage error.
func (s *servedFlags) check(env *cli.Env) error {
	if s.statsWait < 0 {
		fmt.Fprintln(env.Stderr, "--stats-wait must not be negative")
		return fmt.Errorf("%w: --stats-wait %s", cli.ErrUsage, s.statsWait)
	}
	return nil
}

// start starts n servers on the scratch database, and a cost probe on them and it; it returns
// the servers' HTTP bases, and stop, which closes the probe and stops the servers.
func (s *servedFlags) start(ctx context.Context, env *cli.Env, pg Postgres, cfg config.Config, logger *slog.Logger, n int) (urls []string, probe *costProbe, stop func(), err error) {
	srvs, pgURL, stopServers, err := serveReplicasOnScratch(ctx, env, pg, cfg, logger, s.scratch, s.bin, n)
	if err != nil {
		return nil, nil, nil, err
	}
	pids := make([]int, 0, len(srvs))
	for _, srv := range srvs {
		urls = append(urls, "http://"+srv.Addr)
		pids = append(pids, srv.Cmd.Process.Pid)
	}
	db := s.scratch
	if db == "" { // the server's own database, in place
		c, err := pgx.ParseConfig(pgURL)
		if err != nil {
			stopServers()
			return nil, nil, nil, fmt.Errorf("database url: %w", err)
		}
		db = c.Database
	}
	if probe, err = newCostProbe(ctx, pgURL, db, s.statsWait, pids, env.Stderr); err != nil {
		stopServers()
		return nil, nil, nil, err
	}
	return urls, probe, func() { probe.close(); stopServers() }, nil
}
