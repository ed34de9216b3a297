package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/transport/cli"
)

// projectionsCmd is `strata projections status` and `strata projections rebuild NAME`.
func projectionsCmd(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(env.Stderr, "usage: strata projections status | strata projections rebuild NAME [flags]")
		return cli.ErrUsage
	}
	sub, rest := args[0], args[1:]
	var name string
	switch sub {
	case "status":
	case "rebuild":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintln(env.Stderr, "usage: strata projections rebuild NAME [flags]; NAME is one of users, orders, order_stats")
			return cli.ErrUsage
		}
		name, rest = rest[0], rest[1:]
	default:
		fmt.Fprintf(env.Stderr, "strata projections: unknown subcommand %q (status, rebuild)\n", sub)
		return cli.ErrUsage
	}
	// A rebuild reads personal fields: it needs the master key the servers use.
	cfg, _, err := cli.Parse(env, "projections "+sub, rest, (*config.Config).RegisterPersonal)
	if err != nil {
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	// A rebuild holds its lock on a session of its own, named as the servers' leaders are.
	store := eventstore.New(db.pool, storeOptions(cfg))
	runner := projection.NewRunner(db.pool, store, projection.Default(), projection.Options{Connect: db.connect("strata leader")}, logger)

	if sub == "rebuild" {
		started, last := time.Now(), time.Time{}
		err := runner.Rebuild(ctx, name, func(applied int64, position string) {
			if time.Since(last) >= time.Second {
				last = time.Now()
				fmt.Fprintf(env.Stderr, "rebuilding %s: %d events applied, at position %s, %s\n", name, applied, position, time.Since(started).Round(time.Millisecond))
			}
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "rebuilt %s in %s\n", name, time.Since(started).Round(time.Millisecond))
	}
	infos, err := runner.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%-10s %-12s %10s %8s  %s\n", "NAME", "STATUS", "LAG", "SKIPPED", "POSITION")
	for _, in := range infos {
		if name == "" || in.Name == name {
			fmt.Fprintf(env.Stdout, "%-10s %-12s %10d %8d  %s\n", in.Name, in.Status, in.Lag, in.Skipped, in.Position)
		}
	}
	return nil
}
