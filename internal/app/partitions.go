package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/partition"
	"github.com/strata-es/strata/internal/transport/cli"
)

// partitionsCmd is `strata partitions list` and `strata partitions create [--count N]`.
func partitionsCmd(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(env.Stderr, "usage: strata partitions list | strata partitions create [--count N] [flags]")
		return cli.ErrUsage
	}
	sub, rest := args[0], args[1:]
	var count int
	var register func(*config.Config, *config.FlagSet)
	switch sub {
	case "list":
	case "create":
		register = func(_ *config.Config, fs *config.FlagSet) {
			fs.Int(&count, "count", "STRATA_PARTITIONS_COUNT", 0, "partitions to make beyond those kept ahead")
		}
	default:
		fmt.Fprintf(env.Stderr, "strata partitions: unknown subcommand %q (list, create)\n", sub)
		return cli.ErrUsage
	}
	cfg, _, err := cli.Parse(env, "partitions "+sub, rest, register)
	if err != nil {
		return err
	}
	if count < 0 {
		fmt.Fprintf(env.Stderr, "--count must be at least 0, not %d\n", count)
		return fmt.Errorf("%w: --count must be at least 0, not %d", cli.ErrUsage, count)
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	m := partition.New(db.pool, int64(cfg.PartitionSize), logger)
	if sub == "create" {
		made, err := m.Ensure(ctx, count)
		if err != nil {
			return err
		}
		for _, p := range made {
			fmt.Fprintf(env.Stderr, "made partition %s [%d, %d)\n", p.Name, p.First, p.End)
		}
		fmt.Fprintf(env.Stderr, "%d partitions made\n", len(made))
	}
	ps, err := m.List(ctx)
	if err != nil {
		return err
	}
	next, err := m.Next(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%-48s %19s %19s %12s  %s\n", "NAME", "FIRST", "END", "ROWS", "STATE")
	for _, p := range ps {
		state := "attached"
		if !p.Attached {
			state = "detached"
		}
		fmt.Fprintf(env.Stdout, "%-48s %19d %19d %12d  %s\n", p.Name, p.First, p.End, p.Rows, state)
	}
	fmt.Fprintf(env.Stdout, "next position: %d\n", next)
	return nil
}

// archiveCmd is `strata archive --before POSITION|TIME --to FILE`.
func archiveCmd(ctx context.Context, env *cli.Env, args []string) error {
	var before, to string
	cfg, _, err := cli.Parse(env, "archive", args, func(_ *config.Config, fs *config.FlagSet) {
		fs.String(&before, "before", "STRATA_ARCHIVE_BEFORE", "", "archive whole partitions before this position number, position cursor or RFC 3339 time")
		fs.String(&to, "to", "STRATA_ARCHIVE_TO", "", "file to write (gzip NDJSON, the manifest on the last line); must not exist")
	})
	if err != nil {
		return err
	}
	if before == "" || to == "" {
		fmt.Fprintln(env.Stderr, "usage: strata archive --before POSITION|CURSOR|TIME --to FILE [flags]")
		return cli.ErrUsage
	}
	bound, err := partition.ParseBound(before)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	m := partition.New(db.pool, int64(cfg.PartitionSize), logger)
	res, err := m.Archive(ctx, bound, to, progressTo(env))
	if res.Stopped != "" {
		fmt.Fprintf(env.Stderr, "archive stops before %s\n", res.Stopped)
	}
	if err != nil {
		return err
	}
	mf := res.Manifest
	fmt.Fprintf(env.Stdout, "archived %d events of %d partitions to %s (positions %s to %s, sha256 %s)\n",
		mf.Count, len(mf.Partitions), to, orNone(mf.FirstPosition), orNone(mf.LastPosition), mf.SHA256)
	return nil
}

// restoreCmd is `strata restore --from FILE`.
func restoreCmd(ctx context.Context, env *cli.Env, args []string) error {
	var from string
	cfg, _, err := cli.Parse(env, "restore", args, func(_ *config.Config, fs *config.FlagSet) {
		fs.String(&from, "from", "STRATA_RESTORE_FROM", "", "archive file written by strata archive")
	})
	if err != nil {
		return err
	}
	if from == "" {
		fmt.Fprintln(env.Stderr, "usage: strata restore --from FILE [flags]")
		return cli.ErrUsage
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	m := partition.New(db.pool, int64(cfg.PartitionSize), logger)
	mf, err := m.Restore(ctx, from, progressTo(env))
	if err != nil {
		if errors.Is(err, partition.ErrCorrupt) {
			return fmt.Errorf("%w (the file was not written by strata archive, or changed since)", err)
		}
		return err
	}
	fmt.Fprintf(env.Stdout, "restored %d events of %d partitions from %s\n", mf.Count, len(mf.Partitions), from)
	return nil
}

func progressTo(env *cli.Env) partition.Progress {
	return func(format string, args ...any) { fmt.Fprintf(env.Stderr, format+"\n", args...) }
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
