package graph

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/strata-es/strata/internal/platform/telemetry"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/transport/wsconn"
)

// Error codes of authentication and authorization.
const (
	// CodeUnauthenticated: no credential, or one that is malformed, forged or expired.
	CodeUnauthenticated = "UNAUTHENTICATED"
	// CodeForbidden: the credential is good but its role may not run this operation.
	CodeForbidden = "FORBIDDEN"
)

// WebSocket close codes of authentication (the 4400s mirror HTTP's statuses, as
// graphql-transport-ws does with 4401 and 4403).
const (
	// CloseUnauthenticated: connection_init carried no valid credential, or it expired while
	// the connection was open; reconnect with a fresh token.
	CloseUnauthenticated = 4401
	// CloseTooManyConnections: the principal holds as many connections as it may.
	CloseTooManyConnections = 4429
)

// RequiredRole is the role an operation needs: the application layer decides
// (service.Authorize) from its kind and its root fields, fragments and all.
func RequiredRole(doc *ast.QueryDocument, op *ast.OperationDefinition) auth.Role {
	kind := service.Read
	if op.Operation == ast.Mutation {
		kind = service.Write
	}
	w := walker{doc: doc, active: map[string]bool{}}
	var names []string
	for _, f := range w.rootFields(op.SelectionSet) {
		names = append(names, f.Name)
	}
	return service.Authorize(kind, names)
}

// authorize refuses an operation the request's principal may not run, before anything of it
// executes: over HTTP and over WebSocket alike, for every operation type.
type authorize struct{ now func() time.Time }

var (
	_ graphql.HandlerExtension        = authorize{}
	_ graphql.OperationContextMutator = authorize{}
)

func (authorize) ExtensionName() string                   { return "Authorize" }
func (authorize) Validate(graphql.ExecutableSchema) error { return nil }
func (a authorize) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		return codeError(CodeUnauthenticated, auth.ErrNoToken.Error())
	}
	if !p.Expires.IsZero() && !a.now().Before(p.Expires) {
		return codeError(CodeUnauthenticated, auth.ErrTokenExpired.Error())
	}
	if need := RequiredRole(oc.Doc, oc.Operation); p.Role < need {
		return codeError(CodeForbidden, fmt.Sprintf("this operation needs the %s role; the credential has %s", need, p.Role))
	}
	return nil
}

func codeError(code, msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
}

// authenticate puts the principal of a plain HTTP request in its context, or answers 401.
// A WebSocket upgrade may carry its token in connection_init instead of a header, so it is
// let through without one and decided by initConnection.
func authenticate(a *auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Enabled() {
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), auth.Anonymous())))
			return
		}
		header := r.Header.Get("Authorization")
		if header == "" && r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		p, err := a.Authenticate(auth.BearerToken(header))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			writeHTTPError(w, http.StatusUnauthorized, CodeUnauthenticated, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// initConnection authenticates a WebSocket connection from its connection_init payload
// ({"Authorization": "Bearer …"}, or the token alone under "token"), else from the upgrade's
// header; takes one of the principal's connection slots until the connection ends; and closes
// the connection when the token expires.
func (r *Resolver) initConnection(ctx context.Context, payload transport.InitPayload, limiter *auth.ConnLimiter) (context.Context, *transport.InitPayload, error) {
	// The connection's operations join the trace the payload names (traceparent), if any.
	ctx = telemetry.FromPayload(ctx, payload)
	p, ok := auth.FromContext(ctx)
	if r.Auth.Enabled() {
		token := auth.BearerToken(payload.Authorization())
		if t, isString := payload["token"].(string); token == "" && isString {
			token = t
		}
		if token != "" || !ok {
			var err error
			if p, err = r.Auth.Authenticate(token); err != nil {
				return closeWith(ctx, CloseUnauthenticated, err), nil, err
			}
		}
	}
	release, err := limiter.Acquire(p)
	if err != nil {
		return closeWith(ctx, CloseTooManyConnections, err), nil, err
	}
	context.AfterFunc(ctx, release) // the request's context ends with the connection
	ctx = auth.WithPrincipal(ctx, p)
	if !p.Expires.IsZero() {
		conn := wsconn.FromContext(ctx)
		expire := time.AfterFunc(time.Until(p.Expires), func() {
			if conn != nil {
				conn.CloseWithReason(CloseUnauthenticated, "the token has expired; reconnect with a fresh one")
			}
		})
		context.AfterFunc(ctx, func() { expire.Stop() })
	}
	return ctx, nil, nil
}

// RequireRole guards an HTTP endpoint outside GraphQL (/metrics) with the same credentials and
// roles: 401 without a valid one, 403 when its role is below need.
func RequireRole(a *auth.Authenticator, need auth.Role, next http.Handler) http.Handler {
	return authenticate(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		switch {
		case !ok: // an upgrade request let through without a header: not for this endpoint
			writeHTTPError(w, http.StatusUnauthorized, CodeUnauthenticated, auth.ErrNoToken.Error())
		case p.Role < need:
			writeHTTPError(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf("this endpoint needs the %s role; the credential has %s", need, p.Role))
		default:
			next.ServeHTTP(w, r)
		}
	}))
}

// closeWith has gqlgen close a refused connection with code, and err as the reason.
func closeWith(ctx context.Context, code int, err error) context.Context {
	return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), err.Error())
}
