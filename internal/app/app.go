// Package app is Strata's composition root: it turns a command line into a Config, builds every
// part from it, runs the long-lived ones together and stops them in reverse order of start.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/strata-es/strata/internal/transport/benchcmd"
	"github.com/strata-es/strata/internal/transport/cli"
)

type command struct {
	summary string
	run     func(ctx context.Context, env *cli.Env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":       {"run the server (starts a private PostgreSQL when DATABASE_URL is unset)", serveCmd},
		"migrate":     {"apply the database migrations and exit", migrateCmd},
		"bench":       {"benchmarks: `strata bench append` measures appends, `strata bench read` order reads, `strata bench subscribe` live subscriptions", benchCmd},
		"partitions":  {"`list` shows the events table's partitions; `create` makes them ahead now", partitionsCmd},
		"archive":     {"archive whole partitions before a position or time to a file, then drop them", archiveCmd},
		"restore":     {"bring archived partitions back from a file written by archive", restoreCmd},
		"projections": {"`status` shows the read models' checkpoints; `rebuild NAME` rebuilds one", projectionsCmd},
		"export":      {"write events of the global order between two positions or times as NDJSON or CSV, resumable", exportCmd},
		"scavenge":    {"delete the events streams hide (deleted, truncated, beyond maxAge or maxCount) once", scavengeCmd},
	}
}

// benchCmd is `strata bench` (internal/transport/benchcmd), on the server serve would use.
func benchCmd(ctx context.Context, env *cli.Env, args []string) error {
	return benchcmd.Run(ctx, env, postgres, args)
}

// Main runs the strata command line and returns the process exit code: 0 on success, 2 for a
// command line it could not understand, 1 for any other failure (printed to stderr).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	err := Run(ctx, args, stdout, stderr, getenv)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, cli.ErrUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "strata:", err)
		return 1
	}
}

// Run runs the subcommand args[0] with the rest of args.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	env := &cli.Env{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return cli.ErrUsage
		}
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return cli.ErrUsage
	}
	return cmd.run(ctx, env, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Strata: an event-sourced store on PostgreSQL.")
	fmt.Fprintln(w, "\nusage: strata <command> [flags]; strata <command> --help lists a command's flags")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
}
