package benchcmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/testsupport/bench"
	"github.com/strata-es/strata/internal/transport/cli"
)

// readResult is the line `strata bench read` prints: the read benchmark's, and, when the command
// started the server itself, what each read cost (readCosts); the costs are left out with --url.
type readResult struct {
	bench.ReadResult
	readCosts
}

// readSetupConcurrency is how many createOrder mutations the setup has in flight at once.
const readSetupConcurrency = 8

// readyTimeout bounds the wait for the orders read model to show the orders the setup created.
const readyTimeout = 2 * time.Minute

// benchReadCmd runs `strata bench read`: --orders orders created through the GraphQL API (against
// --url, or against `strata serve` started on a scratch database), then --writers clients reading
// random ones of them with order(id) for --duration or --appends reads in all.
func benchReadCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	var opts bench.ReadOptions
	var served servedFlags
	var orders int
	cfg, _, err := cli.Parse(env, "bench read", args, func(_ *config.Config, f *config.FlagSet) {
		f.Int(&opts.Clients, "writers", "STRATA_BENCH_WRITERS", 64, "concurrent clients, each reading one order after another")
		f.Duration(&opts.Duration, "duration", "STRATA_BENCH_DURATION", 10*time.Second, "how long to measure (when --appends is 0)")
		f.Int(&opts.Count, "appends", "STRATA_BENCH_APPENDS", 0, "stop after this many reads in all, over all clients, whatever --duration says; 0 = run for --duration")
		f.Int(&orders, "orders", "STRATA_BENCH_ORDERS", 1000, "orders created through the GraphQL API before the run; each read picks one at random")
		served.register(f, "read")
	})
	if err != nil {
		return err
	}
	if err := validOptions(env, opts); err != nil {
		return err
	}
	if orders < 1 {
		fmt.Fprintln(env.Stderr, "--orders must be at least 1")
		return fmt.Errorf("%w: --orders %d", cli.ErrUsage, orders)
	}
	if err := served.check(env); err != nil {
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	serverURL := served.url
	var probe *costProbe // what the reads cost, measured when the server is this command's
	if serverURL == "" {
		urls, p, stop, err := served.start(ctx, env, pg, cfg, logger, 1)
		if err != nil {
			return err
		}
		defer stop()
		serverURL, probe = urls[0], p
	}
	transport := &http.Transport{MaxIdleConns: max(opts.Clients, readSetupConcurrency), MaxIdleConnsPerHost: max(opts.Clients, readSetupConcurrency)}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	gql := bench.GraphQLOrders{URL: serverURL, Client: client}

	started := time.Now()
	ids, last, err := gql.CreateOrders(ctx, orders, readSetupConcurrency, env.Stderr)
	if err != nil {
		return fmt.Errorf("bench read: create the orders: %w", err)
	}
	if err := gql.WaitForOrders(ctx, ids[len(ids)-1], last, readyTimeout); err != nil {
		return fmt.Errorf("bench read: %w", err)
	}
	fmt.Fprintf(env.Stderr, "bench: %d orders created and readable in %s\n", orders, time.Since(started).Round(time.Millisecond))
	if probe != nil {
		if err := probe.beforeRun(ctx); err != nil {
			return err
		}
	}

	opts.Progress = env.Stderr
	res := readResult{}
	var runErr error
	res.ReadResult, runErr = bench.Read(ctx, gql, ids, opts)
	if probe != nil && ctx.Err() == nil {
		costs, err := probe.afterRun(ctx, res.Reads, "read")
		if err != nil {
			runErr = errors.Join(runErr, err)
		}
		res.readCosts = costs.perRead()
	}
	return printResult(env, res, runErr)
}
