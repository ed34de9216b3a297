package app

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/graph"
	cmdhandler "github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/eventstore"
	"github.com/strata-es/strata/internal/hub"
	"github.com/strata-es/strata/internal/metrics"
	"github.com/strata-es/strata/internal/projection"
	"github.com/strata-es/strata/internal/query"
	"github.com/strata-es/strata/internal/wsconn"
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
	opts.Upcasters = cmdhandler.Upcasters()
	opts.Personal = cmdhandler.PersonalFields()
	opts.MasterKey, _ = cfg.PersonalDataKey() // checked by Validate
	return opts
}

// newResolver builds the GraphQL resolver, the projectors and the subscription feed. Every
// append made in this process wakes the projectors and the feed at once, and has the other
// processes told (a coalesced NOTIFY). The store, the feed, the WebSocket connections, the
// projectors, the pool and the GraphQL layer report to one Metrics, served by routes.
func newResolver(pool *pgxpool.Pool, cfg config.Config, logger *slog.Logger) parts {
	var p parts
	snapshots, _ := cfg.Snapshots() // checked by Validate
	opts := storeOptions(cfg)
	m := metrics.New(logger)
	m.WatchPool(pool)
	opts.Observer = m
	opts.Appended = func() {
		p.projectors.Wake()
		p.hub.Appended()
	}
	store := eventstore.New(pool, opts)
	m.WatchGroupCommit(store.GroupStats)
	p.projectors = projection.NewRunner(pool, store, projection.Default(), projection.Options{}, logger)
	m.WatchProjections(p.projectors)
	p.hub = hub.New(pool, store, hub.Options{Buffer: cfg.SubscriberBuffer, Observer: m}, logger)
	conns := wsconn.NewRegistry()
	m.WatchConnections(conns)
	p.resolver = &graph.Resolver{
		Store:              store,
		Commands:           cmdhandler.New(store, cmdhandler.Options{SnapshotEvery: snapshots}),
		Reader:             query.New(pool),
		Projectors:         p.projectors,
		MaxPageSize:        cfg.MaxPageSize,
		ConsistencyTimeout: cfg.ConsistencyTimeout,
		Hub:                p.hub,
		AllowedOrigins:     cfg.AllowedOrigins,
		KeepAlive:          cfg.KeepAlive,
		MaxReplayEvents:    cfg.MaxReplayEvents,
		Limits: graph.Limits{
			MaxDepth: cfg.MaxDepth, MaxAliases: cfg.MaxAliases, MaxRootFields: cfg.MaxRootFields,
			MaxComplexity: cfg.MaxComplexity, MaxTokens: cfg.MaxTokens, MaxBodyBytes: int64(cfg.MaxBodyBytes),
			RequestTimeout: cfg.RequestTimeout, MaxSubscriptionsPerConnection: cfg.MaxSubscriptionsPerConnection,
			Production: cfg.Mode == "production",
		},
		Logger:  logger,
		Conns:   conns,
		Metrics: m,
	}
	return p
}
