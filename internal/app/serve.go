package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/sync/errgroup"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/playground"
	"github.com/strata-es/strata/migrations"
)

func serveCmd(ctx context.Context, env *environment, args []string) error {
	cfg, _, err := parse(env, "serve", args, (*config.Config).RegisterServe)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, env.stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	parts := newResolver(db.pool, cfg, logger)
	// Requests' contexts derive from base; cancelling it at shutdown ends WebSocket connections,
	// which http.Server.Shutdown leaves alone (they are hijacked).
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           routes(db, parts.resolver, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	logger.InfoContext(ctx, "strata serving", "addr", ln.Addr().String(), "database", describeDB(db.url))
	if config.Loopback(cfg.Addr) {
		logger.InfoContext(ctx, "no authentication is configured: serving this machine only (loopback)")
	} else {
		logger.WarnContext(ctx, "no authentication is configured and --insecure is set: anyone who reaches this address may read and write", "addr", ln.Addr().String())
	}

	g, gctx := errgroup.WithContext(ctx)
	// Projectors stop with the rest; each batch is one transaction, so stopping loses nothing.
	g.Go(func() error { return parts.projectors.Run(gctx) })
	// The subscription feed: one LISTEN connection, fan-out to every subscriber.
	g.Go(func() error { return parts.hub.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-gctx.Done():
		case <-db.clusterDone():
			if err := db.cluster.Err(); err != nil {
				return fmt.Errorf("%w: %w", errClusterExited, err)
			}
			return errClusterExited
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.InfoContext(ctx, "shutting down")
		cancelBase()
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	})
	return g.Wait()
}

func routes(db *database, resolver *graph.Resolver, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	api := graph.NewHandler(resolver, logger)
	mux.Handle("POST /query", api)
	mux.Handle("GET /query", api) // WebSocket upgrades only: GET carries no queries or mutations
	mux.Handle("GET /{$}", playground.Handler())
	mux.Handle("GET "+playground.AssetPrefix, playground.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx, db); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ready reports whether the database answers and carries every migration of this binary.
func ready(ctx context.Context, db *database) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer func() { _ = sqlDB.Close() }()
	pending, err := migrations.Pending(ctx, sqlDB)
	if err != nil {
		return err
	}
	if pending {
		return errors.New("migrations pending")
	}
	return nil
}
