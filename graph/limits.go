package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/strata-es/strata/graph/generated"
	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/transport/readdeadline"
)

// Limits bound what one request may ask of the server. Zero fields take the defaults.
type Limits struct {
	MaxDepth       int   // nesting of fields, fragments followed
	MaxAliases     int   // fields with an alias, in all
	MaxRootFields  int   // fields at the operation's top level
	MaxComplexity  int   // gqlgen complexity: 1 per field, a connection's fields times its first
	MaxTokens      int   // tokens the parser reads before it gives up
	MaxBodyBytes   int64 // bytes of a POST body
	RequestTimeout time.Duration
	// MaxSubscriptionsPerConnection bounds the operations one WebSocket connection runs at once.
	MaxSubscriptionsPerConnection int
	// Production turns off schema introspection and field suggestions in errors, so the
	// schema is not published; development (the zero value) has both.
	Production bool
}

// Default limits.
const (
	DefaultMaxDepth                      = 15
	DefaultMaxAliases                    = 50
	DefaultMaxRootFields                 = 20
	DefaultMaxComplexity                 = 50000
	DefaultMaxTokens                     = 15000
	DefaultMaxBodyBytes                  = 1 << 20
	DefaultRequestTimeout                = 30 * time.Second
	DefaultMaxSubscriptionsPerConnection = 100
)

func (l Limits) withDefaults() Limits {
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxDepth, DefaultMaxDepth)
	set(&l.MaxAliases, DefaultMaxAliases)
	set(&l.MaxRootFields, DefaultMaxRootFields)
	set(&l.MaxComplexity, DefaultMaxComplexity)
	set(&l.MaxTokens, DefaultMaxTokens)
	set(&l.MaxSubscriptionsPerConnection, DefaultMaxSubscriptionsPerConnection)
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	return l
}

// Error codes of the limits (besides gqlgen's COMPLEXITY_LIMIT_EXCEEDED and
// GRAPHQL_PARSE_FAILED for the token limit).
const (
	CodeQueryTooDeep      = "QUERY_TOO_DEEP"
	CodeTooManyAliases    = "TOO_MANY_ALIASES"
	CodeTooManyRootFields = "TOO_MANY_ROOT_FIELDS"
	CodeLimitExceeded     = "LIMIT_EXCEEDED"
	CodeRequestTooLarge   = "REQUEST_TOO_LARGE"
	// CodeUnsupportedMediaType: a POST whose body is not declared application/json.
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	// CodeBadRequest: an HTTP request that is not a GraphQL request at all.
	CodeBadRequest = "BAD_REQUEST"
	CodeTimeout    = "TIMEOUT"
	// CodeIntrospectionDisabled: the server runs in production mode and does not publish its
	// schema.
	CodeIntrospectionDisabled = "INTROSPECTION_DISABLED"
)

// shapeLimits checks an operation's depth, aliases and root fields once it is validated.
type shapeLimits struct{ l Limits }

var (
	_ graphql.HandlerExtension        = shapeLimits{}
	_ graphql.OperationContextMutator = shapeLimits{}
)

func (shapeLimits) ExtensionName() string                   { return "ShapeLimits" }
func (shapeLimits) Validate(graphql.ExecutableSchema) error { return nil }
func (s shapeLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	w := walker{doc: oc.Doc, active: map[string]bool{}}
	roots := len(w.rootFields(oc.Operation.SelectionSet))
	depth := w.depth(oc.Operation.SelectionSet)
	limitErr := func(code, format string, args ...any) *gqlerror.Error {
		return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
	}
	switch {
	case s.l.Production && w.introspects:
		return limitErr(CodeIntrospectionDisabled, "introspection is off: the server runs in production mode")
	case depth > s.l.MaxDepth:
		return limitErr(CodeQueryTooDeep, "the operation nests %d levels deep; the limit is %d", depth, s.l.MaxDepth)
	case w.aliases > s.l.MaxAliases:
		return limitErr(CodeTooManyAliases, "the operation has %d aliased fields; the limit is %d", w.aliases, s.l.MaxAliases)
	case roots > s.l.MaxRootFields:
		return limitErr(CodeTooManyRootFields, "the operation asks for %d top-level fields; the limit is %d", roots, s.l.MaxRootFields)
	}
	return nil
}

// walker measures a selection set, following fragment spreads (the validator has refused
// cycles already; active guards anyway) and counting aliases along the way.
type walker struct {
	doc         *ast.QueryDocument
	active      map[string]bool
	aliases     int
	introspects bool // asks for __schema or __type
}

func (w *walker) fragment(s *ast.FragmentSpread) ast.SelectionSet {
	if s.Definition != nil {
		return s.Definition.SelectionSet
	}
	if f := w.doc.Fragments.ForName(s.Name); f != nil {
		return f.SelectionSet
	}
	return nil
}

func (w *walker) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		d := 0
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Alias != "" && sel.Alias != sel.Name {
				w.aliases++
			}
			if sel.Name == "__schema" || sel.Name == "__type" {
				w.introspects = true
			}
			d = 1 + w.depth(sel.SelectionSet)
		case *ast.InlineFragment:
			d = w.depth(sel.SelectionSet)
		case *ast.FragmentSpread:
			if w.active[sel.Name] {
				continue
			}
			w.active[sel.Name] = true
			d = w.depth(w.fragment(sel))
			delete(w.active, sel.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// rootFields lists the fields at the top of a selection set, through fragments; a field a
// fragment brings twice is listed twice.
func (w *walker) rootFields(set ast.SelectionSet) []*ast.Field {
	var fields []*ast.Field
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			fields = append(fields, sel)
		case *ast.InlineFragment:
			fields = append(fields, w.rootFields(sel.SelectionSet)...)
		case *ast.FragmentSpread:
			if !w.active[sel.Name] {
				w.active[sel.Name] = true
				fields = append(fields, w.rootFields(w.fragment(sel))...)
				delete(w.active, sel.Name)
			}
		}
	}
	return fields
}

// complexity sets the cost of the fields that are not pages: the stats fields cost their
// buckets (at most 1,000) times what each asks for. Pages are priced by pagedSchema.
func complexity(c *generated.ComplexityRoot) {
	c.Query.EventStats = func(child int, from, to time.Time, interval model.StatsInterval, _ *string, _ []string) int {
		return 1 + statsBuckets(from, to, statsInterval(interval))*child
	}
	c.Query.OrderStats = func(child int, from, to time.Time, _ *string) int {
		return 1 + statsBuckets(from, to, 24*time.Hour)*child
	}
}

// pagedSchema prices every field that takes first (a connection: a list, a history, a stream's
// events) at its items times first, the schema's default when not given, so a page of 1,000
// costs what it returns; every aggregate's fields are priced so, with no line of their own.
// A first beyond maxPage counts as maxPage: the resolver refuses it with BAD_USER_INPUT, which
// says what is wrong, where a product overflowing the complexity limit would not.
type pagedSchema struct {
	graphql.ExecutableSchema
	maxPage int
}

// Complexity implements graphql.ExecutableSchema.
func (s pagedSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if c, ok := s.ExecutableSchema.Complexity(ctx, typeName, field, child, args); ok {
		return c, true
	}
	first, ok := args["first"]
	if !ok {
		return 0, false
	}
	n := 0
	switch v := first.(type) {
	case int:
		n = v
	case int64:
		n = int(min(v, int64(s.maxPage)))
	case float64:
		n = int(min(v, float64(s.maxPage)))
	case json.Number:
		x, _ := v.Int64()
		n = int(min(x, int64(s.maxPage)))
	}
	if n <= 0 {
		n = s.defaultFirst(typeName, field)
	}
	return 1 + min(n, s.maxPage)*child, true
}

// defaultFirst is the default of a field's first argument in the schema (20 when it has none).
func (s pagedSchema) defaultFirst(typeName, field string) int {
	if t := s.Schema().Types[typeName]; t != nil {
		if f := t.Fields.ForName(field); f != nil {
			if a := f.Arguments.ForName("first"); a != nil && a.DefaultValue != nil {
				if n, err := strconv.Atoi(a.DefaultValue.Raw); err == nil {
					return n
				}
			}
		}
	}
	return 20
}

// limitRequests bounds a plain HTTP request's body and time, and refuses what is not a
// GraphQL request: a GET (queries only, its request in the URL: overHTTP), or a POST of
// application/json (a browser form cannot send that without CORS letting it, so no page can
// forge a mutation). WebSocket upgrades have their own limits (message size, keep-alives,
// subscriptions per connection); a request for Server-Sent Events is bounded like any other
// until it runs, when overSSE bounds a query or mutation by the request timeout and lets a
// subscription live by its write deadlines and keep-alives. Every answer but a cacheable
// query's says Cache-Control: no-store.
func limitRequests(l Limits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		timeout := l.RequestTimeout
		if WantsEventStream(r) {
			timeout = 0 // overSSE's to set, once it knows the operation
		}
		serve := func(r *http.Request) {
			if timeout > 0 {
				ctx, cancel := context.WithTimeout(r.Context(), timeout)
				defer cancel()
				r = r.WithContext(ctx)
			}
			next.ServeHTTP(w, r)
		}
		if r.Method == http.MethodGet {
			serve(r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeHTTPError(w, http.StatusMethodNotAllowed, CodeBadRequest, "send queries with GET or POST, mutations with POST; subscriptions upgrade GET /query to a WebSocket, or ask for text/event-stream")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeHTTPError(w, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "the request body must be JSON, sent with Content-Type: application/json")
			return
		}
		tooLarge := func() {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, CodeRequestTooLarge,
				fmt.Sprintf("the request body is larger than the limit of %d bytes", l.MaxBodyBytes))
		}
		if r.ContentLength > l.MaxBodyBytes {
			tooLarge()
			return
		}
		// The body is read here, whole and bounded, so that what is not one JSON object of
		// valid UTF-8 is refused with a code before GraphQL sees it.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, l.MaxBodyBytes))
		var maxErr *http.MaxBytesError
		switch {
		case errors.As(err, &maxErr):
			tooLarge()
			return
		case readdeadline.TimedOut(err):
			writeHTTPError(w, http.StatusRequestTimeout, CodeTimeout, "the request body did not arrive within the server's read timeout; send it whole, right after the headers")
			return
		case err != nil:
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, "the request body could not be read")
			return
		case !utf8.Valid(body):
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, "the request body is not valid UTF-8")
			return
		case !json.Valid(body) || bytes.TrimSpace(body)[0] != '{':
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, `the request body must be one JSON object: {"query": "...", "variables": {...}}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		serve(r)
	})
}

// writeHTTPError answers a request refused before GraphQL runs, in GraphQL's error shape.
func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{
		"message": msg, "extensions": map[string]any{"code": code},
	}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errTooManySubscriptions refuses a subscription beyond the per-connection cap.
func errTooManySubscriptions(limit int) error {
	return &limitError{what: "subscriptions on one connection", limit: limit}
}

type limitError struct {
	what  string
	limit int
}

func (e *limitError) Error() string {
	return "too many " + e.what + "; the limit is " + strconv.Itoa(e.limit)
}

var errLimit = errors.New("limit")

func (e *limitError) Is(target error) bool { return target == errLimit }
