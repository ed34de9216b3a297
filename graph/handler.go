package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/strata-es/strata/graph/generated"
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/transport/sse"
	"github.com/strata-es/strata/internal/transport/wsconn"
)

// Error codes in a GraphQL error's extensions.code: a stable contract (schema.graphql).
const (
	CodeBadUserInput         = "BAD_USER_INPUT"
	CodeNotFound             = "NOT_FOUND"
	CodeWrongExpectedVersion = "WRONG_EXPECTED_VERSION"
	// CodeAppendConditionFailed: an event matching an append's condition lies after its read
	// position; extensions.position is one such event's. Nothing was written.
	CodeAppendConditionFailed = "APPEND_CONDITION_FAILED"
	CodeInvariantViolation    = "INVARIANT_VIOLATION"
	CodeConsistencyTimeout    = "CONSISTENCY_TIMEOUT"
	CodeRebuildInProgress     = "REBUILD_IN_PROGRESS"
	// CodeStreamDeleted: the stream was deleted (deleteStream); extensions.version is its
	// tombstone's version.
	CodeStreamDeleted = "STREAM_DELETED"
	// CodeStreamTruncated: what was asked for is hidden by the stream's truncateBefore;
	// extensions.firstVersion is the first version kept.
	CodeStreamTruncated = "STREAM_TRUNCATED"
	// CodeUnavailable: the database could not be reached or went away; extensions.retryable
	// is true, and retrying an append with the same event ids writes nothing twice.
	CodeUnavailable = "UNAVAILABLE"
	CodeInternal    = "INTERNAL"
)

// DefaultWriteTimeout bounds one write to a subscriber, a WebSocket message or an SSE event,
// unless configured otherwise: a client that does not take it in time is dropped as a slow
// consumer, and resumes with after.
const DefaultWriteTimeout = 10 * time.Second

// NewHandler returns the GraphQL endpoint for the resolver r: POST (application/json) for any
// operation, GET for queries, WebSocket upgrades for subscriptions, and Server-Sent Events
// (Accept: text/event-stream) for any operation, one per request.
func NewHandler(r *Resolver, logger *slog.Logger) http.Handler {
	if r.Logger == nil {
		r.Logger = logger
	}
	keepAlive := r.KeepAlive
	if keepAlive <= 0 {
		keepAlive = 10 * time.Second
	}
	limits := r.Limits.withDefaults()
	if r.Conns == nil {
		r.Conns = wsconn.NewRegistry()
	}
	if r.Streams == nil {
		r.Streams = sse.NewRegistry()
	}
	writeTimeout := r.WriteTimeout
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	cfg := generated.Config{Resolvers: r}
	maxPage := r.MaxPageSize
	if maxPage <= 0 {
		maxPage = DefaultMaxPageSize
	}
	complexity(&cfg.Complexity)
	srv := handler.New(pagedSchema{ExecutableSchema: generated.NewExecutableSchema(cfg), maxPage: maxPage})
	conns := auth.NewConnLimiter(r.MaxConnsPerPrincipal)
	srv.AddTransport(transport.Websocket{
		Implementation: wsconn.Implementation{AllowedOrigins: r.AllowedOrigins, WriteTimeout: writeTimeout, Registry: r.Conns},
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			return r.initConnection(ctx, payload, conns)
		},
		InitTimeout:           10 * time.Second,
		PayloadReadLimit:      &limits.MaxBodyBytes,
		KeepAlivePingInterval: keepAlive, // graphql-ws: "ka" messages
		PingPongInterval:      keepAlive, // graphql-transport-ws: ping, and a pong due within twice it
		ErrorFunc: func(ctx context.Context, err error) {
			// A failed write (a deadline passed: the client stopped reading) leaves the socket
			// unusable; closing it ends the connection's operations.
			var wsErr transport.WebsocketError
			if errors.As(err, &wsErr) && !wsErr.IsReadError {
				if c := wsconn.FromContext(ctx); c != nil && c.CloseWithReason(CloseSlowConsumer, "slow consumer: write timed out; resubscribe with after set to the last position received") {
					r.Metrics.SlowConsumerDropped()
				}
			}
			if errors.As(err, &wsErr) && !wsErr.IsReadError {
				logger.WarnContext(ctx, "subscriber dropped: websocket write failed; connection closed", "err", err)
				return
			}
			logger.DebugContext(ctx, "websocket error", "err", err)
		},
	})
	// Before overHTTP: a GET or POST that asks for text/event-stream is answered with one.
	srv.AddTransport(overSSE{
		limits: limits, conns: conns, streams: r.Streams, writeTimeout: writeTimeout, keepAlive: keepAlive,
		metrics: r.Metrics, logger: logger,
	})
	srv.AddTransport(overHTTP{}) // GET for queries, POST for any operation
	// Parsed and validated documents are kept by query text: clients send the same few
	// operations again and again, and thousands of subscriptions to one query share one tree.
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if !limits.Production {
		srv.Use(extension.Introspection{})
	}
	srv.SetDisableSuggestion(limits.Production)
	srv.SetParserTokenLimit(limits.MaxTokens)
	persisted := newPersistedQueries(r.TrustedDocuments)
	srv.Use(persisted)                    // a hash becomes its document before anything parses it
	srv.Use(newTracing(r.TracerProvider)) // outside the rest: their work and log lines are the span's
	srv.Use(authorize{now: time.Now})     // first: nothing runs for a principal who may not run it
	srv.Use(operations{logger: logger, metrics: r.Metrics})
	srv.Use(shapeLimits{limits}) // before complexity: a deep query is told it is too deep
	srv.Use(extension.FixedComplexityLimit(limits.MaxComplexity))
	srv.Use(persistedStore{persisted.cache}) // last: only a document that passed every check is kept
	srv.AroundFields(markLiveReads)          // what a cacheable answer may not hold
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		return presentError(ctx, err, logger)
	})
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "resolver panicked", "panic", p)
		return errors.New("internal error")
	})
	return wsconn.WithHolder(limitRequests(limits, authenticate(r.Auth, r.withLoaders(srv))))
}

// presentError is the one place where Go errors become GraphQL error codes. Errors the client
// caused say what was wrong; anything else is logged here and shown as an internal error, so
// that nothing about the server leaks.
func presentError(ctx context.Context, err error, logger *slog.Logger) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) && gqlErr.Err == nil { // parse and validation errors: already for the client
		if _, ok := gqlErr.Extensions["code"]; !ok { // gqlgen's own refusals of a request that has no code
			if gqlErr.Extensions == nil {
				gqlErr.Extensions = map[string]any{}
			}
			gqlErr.Extensions["code"] = CodeBadRequest
		}
		return gqlErr
	}
	presented := graphql.DefaultErrorPresenter(ctx, err)
	if presented.Extensions == nil {
		presented.Extensions = map[string]any{}
	}
	var wrong *eventstore.WrongExpectedVersionError
	var broken *domain.InvariantError
	var deleted *eventstore.StreamDeletedError
	var truncated *eventstore.TruncatedError
	var failed *eventstore.ConditionFailedError
	switch {
	case errors.As(err, &failed):
		presented.Extensions["code"] = CodeAppendConditionFailed
		presented.Extensions["position"] = failed.Position.String()
	case errors.As(err, &broken):
		presented.Extensions["code"] = CodeInvariantViolation
		presented.Extensions["rule"] = broken.Rule
	case errors.As(err, &deleted):
		presented.Extensions["code"] = CodeStreamDeleted
		presented.Extensions["version"] = deleted.Version
	case errors.As(err, &truncated):
		presented.Extensions["code"] = CodeStreamTruncated
		presented.Extensions["firstVersion"] = truncated.First
	case errors.Is(err, domain.ErrNotFound):
		presented.Extensions["code"] = CodeNotFound
	case errors.Is(err, domain.ErrBadMoney):
		presented.Extensions["code"] = CodeBadUserInput
	case errors.Is(err, projection.ErrConsistencyTimeout), errors.Is(err, eventstore.ErrAsOfUnsettled), errors.Is(err, eventstore.ErrHeldBack):
		presented.Extensions["code"] = CodeConsistencyTimeout
	case errors.Is(err, errLimit):
		presented.Extensions["code"] = CodeLimitExceeded
	// Before the deadline: a connection attempt that timed out is the database not answering.
	// A statement cut off mid-flight may have committed; the message says why retrying is safe.
	case eventstore.IsUnavailable(err):
		logger.WarnContext(ctx, "graphql request failed: database unavailable", "path", presented.Path.String(), "err", err)
		presented.Message = "the database is unavailable; retry (appends are idempotent when you pass event ids)"
		presented.Extensions["code"] = CodeUnavailable
		presented.Extensions["retryable"] = true
		if eventstore.MayHaveCommitted(err) {
			// Retrying an append with event ids is still safe; a command whose ids the server
			// makes (registerUser, createOrder) may have been applied: read before repeating it.
			presented.Message = "the database went away during the request, which may have been applied; retry appends with their event ids, read before repeating a command"
			presented.Extensions["mayHaveCommitted"] = true
		}
	case errors.Is(err, context.DeadlineExceeded):
		presented.Message = "the request took longer than the server allows"
		presented.Extensions["code"] = CodeTimeout
	case errors.Is(err, projection.ErrTooManyEvents):
		presented.Extensions["code"] = CodeBadUserInput
	case errors.Is(err, projection.ErrRebuildRunning):
		presented.Extensions["code"] = CodeRebuildInProgress
	case errors.As(err, &wrong):
		presented.Extensions["code"] = CodeWrongExpectedVersion
		presented.Extensions["streamId"] = wrong.StreamID
		presented.Extensions["actualVersion"] = wrong.Actual
		presented.Extensions["expectedVersion"] = wrong.Expected
	case errors.Is(err, eventstore.ErrInvalidInput), errors.Is(err, eventstore.ErrDuplicateEventID):
		presented.Extensions["code"] = CodeBadUserInput
	case errors.Is(err, eventstore.ErrStreamNotFound):
		presented.Extensions["code"] = CodeNotFound
	default:
		logger.ErrorContext(ctx, "graphql request failed", "path", presented.Path.String(), "err", err)
		presented.Message = "internal error"
		presented.Extensions["code"] = CodeInternal
	}
	return presented
}
