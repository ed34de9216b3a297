package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rs/cors"
	"golang.org/x/sync/errgroup"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/telemetry"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/store/leader"
	"github.com/strata-es/strata/internal/store/partition"
	"github.com/strata-es/strata/internal/transport/cli"
	"github.com/strata-es/strata/internal/transport/explorer"
	"github.com/strata-es/strata/internal/transport/playground"
	"github.com/strata-es/strata/internal/transport/readdeadline"
	"github.com/strata-es/strata/internal/transport/reqlog"
	"github.com/strata-es/strata/internal/transport/sse"
	"github.com/strata-es/strata/internal/transport/wsconn"
	"github.com/strata-es/strata/migrations"
)

func serveCmd(ctx context.Context, env *cli.Env, args []string) error {
	return serve(ctx, env, args, nil)
}

// serve is `strata serve`, tracing through tracing; nil sets tracing up from the environment
// (telemetry.Start). Tests pass a provider of their own.
func serve(ctx context.Context, env *cli.Env, args []string, tracing *telemetry.Tracing) error {
	cfg, _, err := cli.Parse(env, "serve", args, (*config.Config).RegisterServe)
	if err != nil {
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	if tracing == nil {
		if tracing, err = telemetry.Start(ctx, env.Getenv, ""); err != nil {
			return err
		}
	}
	// Deferred first, so run last: the spans of the shutdown itself are exported too.
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(flushCtx); err != nil {
			logger.WarnContext(flushCtx, "could not export the last spans", "err", err)
		}
	}()
	if tracing.Enabled() {
		logger.InfoContext(ctx, "tracing: exporting spans by OTLP")
	}
	authn, err := cfg.Authenticator()
	if err != nil {
		return err
	}
	trusted, err := trustedDocuments(cfg)
	if err != nil {
		return err
	}
	// The address is taken first: a port in use fails at once, before a private cluster is
	// started or migrations run, and nothing else can take the port while they do.
	// Connections wait in the backlog until the server serves.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer func() { _ = ln.Close() }() // when serving did not start; Serve closes it otherwise
	profiles, err := listenPprof(cfg.PprofAddr)
	if err != nil {
		return err
	}
	defer profiles.close()
	db, err := openTracedDatabase(ctx, cfg, logger, tracing)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	if err := checkSession(ctx, db, logger); err != nil {
		return err
	}
	// Partitions are made ahead before the first append can need one, then kept ahead.
	partitions := partition.New(db.pool, int64(cfg.PartitionSize), logger)
	if _, err := partitions.Ensure(ctx, 0); err != nil {
		return err
	}
	parts := newTracedResolver(db.pool, db.connect, cfg, logger, tracing.Provider())
	if db.replica != nil {
		attachReplica(parts, db.replica, cfg, logger)
	}
	parts.resolver.Auth = authn
	parts.resolver.MaxConnsPerPrincipal = cfg.MaxConnsPerPrincipal
	parts.resolver.TrustedDocuments = trusted
	// Requests' contexts derive from base, which outlives the shutdown of the HTTP server: an
	// append in flight when the signal comes finishes and is answered. Cancelling base
	// afterwards ends whatever is still open.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	// Slow clients: a request's headers must arrive within --read-timeout, and then its body
	// within it again (routes sets that deadline per request and lifts it once the body is read,
	// so that neither a streamed answer nor a WebSocket inherits it); a keep-alive connection
	// waits --idle-timeout for its next request; headers beyond --max-header-bytes are answered
	// 431.
	srv := &http.Server{
		Handler:           routes(db, parts.resolver, cfg, logger),
		ReadHeaderTimeout: cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	logger.InfoContext(ctx, "strata serving", "addr", ln.Addr().String(), "database", config.DescribeDB(db.url), "session_database", config.DescribeDB(db.session))
	if profiles != nil {
		logger.InfoContext(ctx, "serving Go's profiles", "pprof_addr", profiles.addr(), "path", "/debug/pprof/")
		go profiles.serve()
	}
	switch {
	case authn.Enabled():
		logger.InfoContext(ctx, "authentication is on: every request needs a bearer token",
			"jwt_hs256", cfg.JWTSecretFile != "", "jwt_public_keys", len(cfg.JWTPublicKeys), "api_keys", len(cfg.APIKeys))
	case config.Loopback(cfg.Addr):
		logger.InfoContext(ctx, "no authentication is configured: serving this machine only (loopback)")
	default:
		logger.WarnContext(ctx, "no authentication is configured and --insecure is set: anyone who reaches this address may read and write", "addr", ln.Addr().String())
	}

	// The projectors and the subscription feed run until the HTTP side has stopped, so that
	// requests finishing during the shutdown still see them.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	g, gctx := errgroup.WithContext(ctx)
	// Projectors stop with the rest; each batch is one transaction, so stopping loses nothing.
	g.Go(func() error { return parts.projectors.Run(background) })
	// The subscription feed: one LISTEN connection, fan-out to every subscriber.
	g.Go(func() error { return parts.hub.Run(background) })
	if cfg.ScavengeInterval > 0 {
		// One scavenger at a time among the replicas: it runs where this process leads
		// "scavenger", on a session of its own, as the projectors do. Two at once would only
		// delete the same rows twice; one saves the work.
		scavenger := newScavenger(db.pool, parts.resolver.Store, cfg, logger)
		g.Go(func() error {
			leader.Run(background, db.connect("strata scavenger"), "scavenger", leader.Options{Logger: logger, Observer: parts.resolver.Metrics}, func(ctx context.Context) {
				_ = scavenger.Run(ctx) // it logs its own failures and returns when ctx ends
			})
			return nil
		})
	}
	g.Go(func() error { return partitions.Run(background) })
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
		defer stopBackground()
		return shutdown(ctx, srv, parts.resolver.Conns, parts.resolver.Streams, cancelBase, cfg.ShutdownTimeout, logger)
	})
	return g.Wait()
}

// shutdown stops the HTTP side in order: no new connections; every WebSocket told "going
// away" (1001) and every SSE stream ended without complete, so clients reconnect elsewhere or
// later and resume from their last position; requests in flight, appends among them, finished
// and answered within timeout; then whatever is left cancelled.
func shutdown(ctx context.Context, srv *http.Server, conns *wsconn.Registry, streams *sse.Registry, cancelBase func(), timeout time.Duration, logger *slog.Logger) error {
	start := time.Now()
	logger.InfoContext(ctx, "shutting down", "deadline", timeout)
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(shutCtx) }() // stops accepting at once
	closed := conns.CloseAll(websocket.CloseGoingAway, "server shutting down")
	// A stream is a request in flight that would otherwise hold Shutdown until its timeout.
	ended := streams.CloseAll("server shutting down; subscribe again with after set to the last position received")
	err := <-done
	cancelBase()
	if err != nil {
		return fmt.Errorf("http shutdown: requests still running after %s: %w", timeout, err)
	}
	logger.InfoContext(ctx, "http stopped", "websockets_closed", closed, "sse_streams_ended", ended, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func routes(db *database, resolver *graph.Resolver, cfg config.Config, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	api := graph.NewHandler(resolver, logger)
	// Every method: the handler refuses what is not a GET (queries only), a JSON POST or a
	// WebSocket upgrade, with a code.
	mux.Handle("/query", api)
	mux.Handle("GET /{$}", playground.Handler())
	mux.Handle("GET "+playground.AssetPrefix, playground.Handler())
	mux.Handle("GET "+explorer.Path, explorer.Handler())
	mux.Handle("GET "+explorer.AssetPrefix, explorer.Handler())
	// Metrics show load and the operation names clients send: admins only, once there is
	// authentication.
	mux.Handle("GET /metrics", graph.RequireRole(resolver.Auth, auth.RoleAdmin, resolver.Metrics.Handler()))
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
		_, _ = w.Write([]byte("ready\n" + replicaStatus(ctx, resolver)))
	})
	logged := reqlog.Middleware(logger, []string{"/healthz", "/readyz", "/metrics"}, withCORS(cfg.CORSOrigins, mux))
	// A body must arrive within --read-timeout of its headers. Requests without one, WebSocket
	// upgrades among them, get no deadline: gorilla and gqlgen's keep-alive rule a WebSocket.
	// An SSE stream lifts its request's deadline once the body is read (internal/transport/sse).
	// A request's traceparent (POST, GET, an upgrade, a stream of server-sent events alike)
	// makes its operation a child of the caller's span, and its log lines carry the trace id.
	return readdeadline.Body(cfg.ReadTimeout, telemetry.Extract(logged))
}

// withCORS lets pages of the configured origins call the API from a browser, with a bearer
// token; with none configured it adds nothing, and browsers keep other origins out.
func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", reqlog.Header},
		ExposedHeaders: []string{reqlog.Header},
		MaxAge:         600,
	}).Handler(next)
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

// trustedDocuments is what --trusted-documents lists (nil when it is not set) and, with it,
// every operation the Explorer sends (read from its embedded script), so that the Explorer
// works on a server that runs only trusted documents.
func trustedDocuments(cfg config.Config) (map[string]string, error) {
	listed, err := cfg.TrustedDocuments()
	if err != nil || listed == nil {
		return nil, err
	}
	var kinds []string
	for _, k := range aggregates.All() {
		kinds = append(kinds, k.Describe().Name)
	}
	explorerDocs, err := explorer.Documents(kinds)
	if err != nil {
		return nil, fmt.Errorf("--trusted-documents: the Explorer's operations: %w", err)
	}
	docs := make(map[string]string, len(listed)+len(explorerDocs))
	for _, d := range explorerDocs {
		sum := sha256.Sum256([]byte(d))
		docs[hex.EncodeToString(sum[:])] = d
	}
	maps.Copy(docs, listed)
	return docs, nil
}
