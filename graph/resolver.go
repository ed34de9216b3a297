// Package graph holds Strata's GraphQL resolvers: thin translations between the schema in
// schema.graphql and the packages under internal/. The code gqlgen generates lives apart, in
// graph/generated and graph/model, and is never edited by hand (but for graph/model/domain.go,
// the hand-written User and Order models gqlgen.yml binds).
package graph

//go:generate go tool gqlgen generate

import (
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/internal/platform/metrics"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/transport/sse"
	"github.com/strata-es/strata/internal/transport/wsconn"
)

// DefaultConsistencyTimeout bounds how long consistentWith waits unless configured otherwise.
const DefaultConsistencyTimeout = service.DefaultConsistencyTimeout

// Resolver carries what the resolvers need; app builds it.
type Resolver struct {
	Store      *eventstore.Store
	Commands   *command.Handler
	Reader     *query.Reader
	Projectors *projection.Runner
	// Replica, when set, answers queries of projections and history (replica.go); nil reads
	// everything from the primary.
	Replica *Replica
	// MaxPageSize caps first on every connection; 0 means DefaultMaxPageSize.
	MaxPageSize int
	// ConsistencyTimeout bounds the wait of consistentWith; 0 means DefaultConsistencyTimeout.
	ConsistencyTimeout time.Duration
	// MaxReplayEvents bounds the events replayed for a list as of a time; 0 means
	// DefaultMaxReplayEvents.
	MaxReplayEvents int
	// LoaderWait is how long a data loader gathers keys before it reads; 0 means
	// DefaultLoaderWait.
	LoaderWait time.Duration
	// Limits bound what one request may ask (limits.go).
	Limits Limits
	// TrustedDocuments, when not nil, are the only documents the server runs (sha256 hex of a
	// document → the document: persisted.go); nil runs any document, and keeps those sent
	// with a hash (automatic persisted queries).
	TrustedDocuments map[string]string
	// Hub feeds subscriptions.
	Hub *hub.Hub
	// KeepAlive is the WebSocket keep-alive interval, and how long an SSE stream stays quiet
	// before a comment; 0 means 10s.
	KeepAlive time.Duration
	// WriteTimeout bounds one write to a subscriber (a WebSocket message, an SSE event); 0
	// means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// AllowedOrigins may open WebSocket connections besides the server's own origin.
	AllowedOrigins []string
	// Auth checks bearer tokens; nil (or one with nothing configured) makes every client
	// auth.Anonymous.
	Auth *auth.Authenticator
	// MaxConnsPerPrincipal caps one authenticated principal's WebSocket connections and SSE
	// streams together; 0 means no cap.
	MaxConnsPerPrincipal int
	// Conns holds the open WebSocket connections, for a stopping server to close; NewHandler
	// makes one when nil.
	Conns *wsconn.Registry
	// Streams holds the open SSE streams, for a stopping server to end; NewHandler makes one
	// when nil.
	Streams *sse.Registry
	// Logger logs what the resolvers handle; nil discards.
	Logger *slog.Logger
	// Metrics counts operations and dropped slow consumers; nil counts nothing.
	Metrics *metrics.Metrics
	// TracerProvider makes a span per operation (tracing.go); nil: the global one.
	TracerProvider trace.TracerProvider
	// Service is the application layer the resolvers call; nil makes one from the fields
	// above when first needed.
	Service *service.Service

	svcOnce sync.Once
}
