package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/transport/cli"
)

// newScavenger builds the scavenger of store: it deletes what streams hide, never past what
// every projection has applied.
func newScavenger(pool *pgxpool.Pool, store *eventstore.Store, cfg config.Config, logger *slog.Logger) *eventstore.Scavenger {
	return eventstore.NewScavenger(store, eventstore.ScavengeOptions{
		Batch:    cfg.ScavengeBatch,
		Interval: cfg.ScavengeInterval,
		Applied: func(ctx context.Context, category string) (eventstore.Position, error) {
			return projection.Applied(ctx, pool, category)
		},
	}, logger)
}

// scavengeCmd is `strata scavenge`: one pass of the scavenger, with a progress line per batch.
func scavengeCmd(ctx context.Context, env *cli.Env, args []string) error {
	cfg, _, err := cli.Parse(env, "scavenge", args, (*config.Config).RegisterScavenge)
	if err != nil {
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	store := eventstore.New(db.pool, storeOptions(cfg))
	started := time.Now()
	deleted, err := newScavenger(db.pool, store, cfg, logger).Once(ctx)
	if err != nil {
		return fmt.Errorf("after deleting %d events: %w", deleted, err)
	}
	fmt.Fprintf(env.Stdout, "scavenged %d events in %s\n", deleted, time.Since(started).Round(time.Millisecond))
	return nil
}
