package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/metrics"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	cmdhandler "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/store/leader"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/transport/wsconn"
)

// parts are what the server runs, built on one pool.
type parts struct {
	resolver   *graph.Resolver
	projectors *projection.Runner
	hub        *hub.Hub
}

// storeOptions are the store's settings and the domain's read transforms (upcasters, personal
// fields): every store of a server, on the primary or a replica, reads events the same way.
func storeOptions(cfg config.Config) eventstore.Options {
	opts := cfg.StoreOptions()
	opts.Upcasters = cmdhandler.Upcasters(aggregates.All())
	opts.Personal = cmdhandler.PersonalFields(aggregates.All())
	opts.MasterKey, _ = cfg.PersonalDataKey() // checked by Validate
	return opts
}

// newResolver builds the GraphQL resolver, the projectors and the subscription feed. Every
// append made in this process wakes the projectors and the feed at once, and has the other
// processes told (a coalesced NOTIFY). The store, the feed, the WebSocket connections, the
// projectors, the pool and the GraphQL layer report to one Metrics, served by routes.
//
// connect, when not nil, opens sessions of their own (the session URL, named for
// pg_stat_activity): the LISTEN connection and one per projector leadership. Notifications of
// appends made by other processes then wake this process's projectors too, so that a leader
// does not wait for its poll. With nil (tests of the GraphQL layer), every projector runs here
// and the listener copies the pool's configuration.
func newResolver(pool *pgxpool.Pool, connect func(name string) func(context.Context) (*pgx.Conn, error), cfg config.Config, logger *slog.Logger) parts {
	return newTracedResolver(pool, connect, cfg, logger, nil)
}

// newTracedResolver is newResolver with every part making its spans through tp (nil: the global
// provider, a no-op unless the process set one).
func newTracedResolver(pool *pgxpool.Pool, connect func(name string) func(context.Context) (*pgx.Conn, error), cfg config.Config, logger *slog.Logger, tp trace.TracerProvider) parts {
	var p parts
	snapshots, _ := cfg.Snapshots() // checked by Validate
	opts := storeOptions(cfg)
	m := metrics.New(logger)
	m.WatchPool(pool)
	opts.Observer = m
	opts.TracerProvider = tp
	opts.Appended = func(categories []string) {
		p.projectors.WakeFor(categories)
		p.hub.Appended(categories)
	}
	store := eventstore.New(pool, opts)
	m.WatchGroupCommit(store.GroupStats)
	projOpts := projection.Options{TracerProvider: tp}
	hubOpts := hub.Options{Buffer: cfg.SubscriberBuffer, Observer: m, Heard: m.Notified, Notified: func(categories []string) {
		p.projectors.WakeFor(categories)
	}}
	if connect != nil {
		projOpts.Connect = connect("strata leader")
		// Appends wake the projectors of their categories, this process's at once and other
		// processes' through the listener: the poll is only the fallback for a lost
		// notification, and each poll is a transaction per projector.
		projOpts.Poll = time.Second
		projOpts.Leadership = leader.Options{Logger: logger, Observer: m}
		hubOpts.Connect = connect("strata listener")
	}
	p.projectors = projection.NewRunner(pool, store, projection.Default(), projOpts, logger)
	m.WatchProjections(p.projectors)
	p.hub = hub.New(pool, store, hubOpts, logger)
	conns := wsconn.NewRegistry()
	m.WatchConnections(conns)
	p.resolver = &graph.Resolver{
		Store:              store,
		Commands:           cmdhandler.New(store, cmdhandler.Options{SnapshotEvery: snapshots, TracerProvider: tp}),
		Reader:             query.New(pool),
		Projectors:         p.projectors,
		MaxPageSize:        cfg.MaxPageSize,
		ConsistencyTimeout: cfg.ConsistencyTimeout,
		Hub:                p.hub,
		AllowedOrigins:     cfg.AllowedOrigins,
		KeepAlive:          cfg.KeepAlive,
		WriteTimeout:       cfg.WriteTimeout,
		MaxReplayEvents:    cfg.MaxReplayEvents,
		Limits: graph.Limits{
			MaxDepth: cfg.MaxDepth, MaxAliases: cfg.MaxAliases, MaxRootFields: cfg.MaxRootFields,
			MaxComplexity: cfg.MaxComplexity, MaxTokens: cfg.MaxTokens, MaxBodyBytes: int64(cfg.MaxBodyBytes),
			RequestTimeout: cfg.RequestTimeout, MaxSubscriptionsPerConnection: cfg.MaxSubscriptionsPerConnection,
			Production: cfg.Mode == "production",
		},
		Logger:         logger,
		Conns:          conns,
		Metrics:        m,
		TracerProvider: tp,
	}
	return p
}
