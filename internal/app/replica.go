package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/telemetry"
	cmdhandler "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/store/replica"
)

// replicaConnectTimeout bounds a connection attempt to the read replica when its URL sets none:
// a replica that does not answer costs a read this long before the primary answers it.
const replicaConnectTimeout = 3 * time.Second

// openReplica makes the pool on the read replica (--read-database-url). A URL that does not
// parse fails the start; a replica that does not answer does not: reads go to the primary
// until it does.
func openReplica(ctx context.Context, cfg config.Config, logger *slog.Logger, tracing *telemetry.Tracing) (*pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.ReadDatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("read database url: %w", err)
	}
	poolCfg.MaxConns = int32(min(cfg.DBMaxConns, 1<<16)) //nolint:gosec // bounded just above
	if poolCfg.ConnConfig.ConnectTimeout == 0 {
		poolCfg.ConnConfig.ConnectTimeout = replicaConnectTimeout
	}
	eventstore.ConfigurePool(poolCfg)
	traceSQL(poolCfg, tracing)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("read replica: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		logger.WarnContext(ctx, "read replica does not answer: reads go to the primary until it does",
			"read_database", config.DescribeDB(cfg.ReadDatabaseURL), "err", err)
	} else {
		logger.InfoContext(ctx, "reading projections and history from a replica", "read_database", config.DescribeDB(cfg.ReadDatabaseURL))
	}
	return pool, nil
}

// attachReplica points the resolver's queries of projections and history at the replica
// behind pool: a store, a reader and a replaying command handler of their own, a Router that
// falls back to the primary, and consistentWith waiting on the replica's checkpoints.
func attachReplica(p parts, pool *pgxpool.Pool, cfg config.Config, logger *slog.Logger) {
	m := p.resolver.Metrics
	router := replica.New(pool, replica.Options{Observer: m}, logger)
	m.WatchReadReplica(router.Up, replica.Reasons()...)
	opts := storeOptions(cfg)
	opts.GroupCommit = false // it never appends
	opts.Observer = m
	store := eventstore.New(pool, opts)
	snapshots, _ := cfg.Snapshots() // checked by Validate
	projectors := p.projectors
	p.resolver.Replica = &graph.Replica{
		Store:    store,
		Reader:   query.New(pool),
		Commands: cmdhandler.New(store, cmdhandler.Options{SnapshotEvery: snapshots, ReadOnly: true}),
		WaitFor: func(ctx context.Context, name string, pos eventstore.Position, timeout time.Duration) error {
			return projectors.WaitForOn(ctx, pool, name, pos, timeout)
		},
		Router: router,
	}
}

// replicaStatus is the readiness line about the read replica: a replica that is down does not
// make the process unready, since the primary answers every read meanwhile; it shows here for
// whoever looks.
func replicaStatus(ctx context.Context, resolver *graph.Resolver) string {
	if resolver.Replica == nil {
		return ""
	}
	if err := resolver.Replica.Router.Check(ctx); err != nil {
		return "read replica: unavailable, reads go to the primary: " + err.Error() + "\n"
	}
	return "read replica: ok\n"
}
