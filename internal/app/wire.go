package app

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/graph"
	cmdhandler "github.com/strata-es/strata/internal/command"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/eventstore"
	"github.com/strata-es/strata/internal/projection"
	"github.com/strata-es/strata/internal/query"
)

// newResolver builds the GraphQL resolver and the projectors it reads, on one pool. Appends made
// through the resolver's commands wake the projectors at once.
func newResolver(pool *pgxpool.Pool, cfg config.Config, logger *slog.Logger) (*graph.Resolver, *projection.Runner) {
	store := eventstore.New(pool, cfg.StoreOptions())
	runner := projection.NewRunner(pool, store, projection.Default(), projection.Options{}, logger)
	return &graph.Resolver{
		Store:              store,
		Commands:           cmdhandler.New(store, cmdhandler.Options{Appended: runner.Wake}),
		Reader:             query.New(pool),
		Projectors:         runner,
		MaxPageSize:        cfg.MaxPageSize,
		ConsistencyTimeout: cfg.ConsistencyTimeout,
	}, runner
}
