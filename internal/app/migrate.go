package app

import (
	"context"
	"fmt"
)

func migrateCmd(ctx context.Context, env *environment, args []string) error {
	cfg, _, err := parse(env, "migrate", args, nil)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, env.stderr)
	db, err := openDatabase(ctx, cfg, logger) // opening applies the migrations
	if err != nil {
		return err
	}
	db.close(context.WithoutCancel(ctx), cfg, logger) // a Ctrl-C now must not turn a clean stop into a crash
	fmt.Fprintln(env.stdout, "migrations applied")
	return nil
}
