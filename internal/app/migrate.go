package app

import (
	"context"
	"fmt"

	"github.com/strata-es/strata/internal/transport/cli"
)

func migrateCmd(ctx context.Context, env *cli.Env, args []string) error {
	cfg, _, err := cli.Parse(env, "migrate", args, nil)
	if err != nil {
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger) // opening applies the migrations
	if err != nil {
		return err
	}
	db.close(context.WithoutCancel(ctx), cfg, logger) // a Ctrl-C now must not turn a clean stop into a crash
	fmt.Fprintln(env.Stdout, "migrations applied")
	return nil
}
