package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Response media types of the GraphQL over HTTP specification.
const (
	// mediaJSON is the legacy type: every well-formed request is answered 200, errors and all.
	mediaJSON = "application/json"
	// mediaGraphQLResponse is the specification's own type: a request refused before it runs
	// is answered 4xx, with no data entry.
	mediaGraphQLResponse = "application/graphql-response+json"
)

// overHTTP serves GraphQL over plain HTTP as the GraphQL over HTTP specification has it (the
// graphql-http audits check it: internal/app/http_audit_test.go): a POST of a JSON body runs
// any operation, a GET with the request in its URL runs queries only (a mutation or a
// subscription is answered 405 with Allow: POST), and the status and body of a request refused
// before it runs follow the response's media type. limitRequests has already refused what is
// not a GET or a JSON POST, bounded the body and set the deadline.
//
// gqlgen's transport.GET and transport.POST do not: they answer a mutation over GET with 406,
// a parse or validation error under application/json with 422, and write "data": null with
// every request error.
type overHTTP struct{}

var _ graphql.Transport = overHTTP{}

func (overHTTP) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && (r.Method == http.MethodGet || r.Method == http.MethodPost)
}

func (overHTTP) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	params, documentID, msg := readParams(r)
	if msg != "" {
		writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	media := responseMediaType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", media)
	ctx := r.Context()
	if documentID != "" {
		ctx = context.WithValue(ctx, documentIDKey{}, documentID) // persistedQueries reads it
	}
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		// A request error: nothing ran, so the answer has no data entry (not even null).
		w.WriteHeader(requestErrorStatus(media, errs))
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs)
		writeResponse(w, struct {
			Errors     gqlerror.List  `json:"errors"`
			Extensions map[string]any `json:"extensions,omitempty"`
		}{resp.Errors, resp.Extensions})
		return
	}
	if r.Method == http.MethodGet && oc.Operation.Operation != ast.Query {
		// A GET may be repeated, prefetched or cached by anything along the way, so it runs
		// nothing that writes; a subscription has its own transports, the WebSocket and SSE.
		w.Header().Set("Allow", http.MethodPost)
		msg := "GET runs queries only: send mutations with POST"
		if oc.Operation.Operation == ast.Subscription {
			msg = "GET runs queries only: subscribe over a WebSocket (GET /query with Upgrade: websocket) or Server-Sent Events (Accept: text/event-stream)"
		}
		writeHTTPError(w, http.StatusMethodNotAllowed, CodeBadRequest, msg)
		return
	}
	past := readsThePast(oc, time.Now())
	var live atomic.Bool
	if past {
		ctx = context.WithValue(ctx, liveReadsKey{}, &live)
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	resp := responses(ctx)
	if past && len(resp.Errors) == 0 && !live.Load() {
		w.Header().Set("Cache-Control", CacheableQuery)
		w.Header().Add("Vary", "Authorization")
	}
	writeResponse(w, resp)
}

// CacheableQuery is the Cache-Control of an answer about the past: a query whose every root
// field reads with atVersion, or with an asOf at least PastAfter old, and reads nothing as it
// is now below them. Such an answer stays as it is unless forgetUser, a truncation or a
// deletion changes the past, so it may be kept a few minutes, by the client alone (private: it
// is the principal's), and never longer. Every other answer says no-store.
const CacheableQuery = "private, max-age=300"

// PastAfter is how old an asOf must be for its answer to be cached: older than any append
// still in flight when the query runs.
const PastAfter = time.Minute

// readsThePast reports whether oc is a query whose every root field (through fragments) reads
// with atVersion or with an asOf at least PastAfter before now.
func readsThePast(oc *graphql.OperationContext, now time.Time) bool {
	if oc.Operation.Operation != ast.Query {
		return false
	}
	w := walker{doc: oc.Doc, active: map[string]bool{}}
	fields := w.rootFields(oc.Operation.SelectionSet)
	for _, f := range fields {
		args := f.ArgumentMap(oc.Variables)
		if args["atVersion"] != nil {
			continue
		}
		asOf, ok := args["asOf"].(string)
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, asOf)
		if err != nil || now.Sub(t) < PastAfter {
			return false
		}
	}
	return len(fields) > 0
}

// liveReadsKey holds, in the context of a query that reads the past, the flag markLiveReads
// sets.
type liveReadsKey struct{}

// markLiveReads flags a query about the past that runs a resolver below its root fields: such
// a field reads as it is now (an order's customer, a user's orders, any history), so the
// answer is not cached.
func markLiveReads(ctx context.Context, next graphql.Resolver) (any, error) {
	if fc := graphql.GetFieldContext(ctx); fc != nil && fc.IsResolver && fc.Object != "Query" {
		if live, ok := ctx.Value(liveReadsKey{}).(*atomic.Bool); ok {
			live.Store(true)
		}
	}
	return next(ctx)
}

// readParams reads a GraphQL request from a GET's URL or a POST's JSON body (which
// limitRequests has checked is one JSON object), and the top-level documentId of a request
// that names its document by hash (persisted.go). A request without a query string, unless it
// names its document by extensions.persistedQuery or documentId, or whose variables or
// extensions are not JSON objects, is not a GraphQL request: msg says why.
func readParams(r *http.Request) (_ *graphql.RawParams, documentID string, msg string) {
	var body struct {
		Query         *string        `json:"query"`
		OperationName *string        `json:"operationName"`
		Variables     map[string]any `json:"variables"`
		Extensions    map[string]any `json:"extensions"`
		DocumentID    *string        `json:"documentId"`
	}
	if r.Method == http.MethodGet {
		values, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, "", "the URL's query string could not be read: " + err.Error()
		}
		if values.Has("query") {
			q := values.Get("query")
			body.Query = &q
		}
		if name := values.Get("operationName"); name != "" {
			body.OperationName = &name
		}
		if values.Has("documentId") {
			id := values.Get("documentId")
			body.DocumentID = &id
		}
		for key, into := range map[string]*map[string]any{"variables": &body.Variables, "extensions": &body.Extensions} {
			if v := values.Get(key); v != "" && decodeJSON(v, into) != nil {
				return nil, "", "the " + key + " parameter must be a JSON object"
			}
		}
	} else {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, "", "the request body could not be read"
		}
		if err := decodeJSON(string(raw), &body); err != nil {
			return nil, "", `the request body must be {"query": "...", "variables": {...}}: query a string, operationName a string, variables and extensions objects`
		}
	}
	_, persisted := body.Extensions["persistedQuery"]
	if body.DocumentID != nil {
		if *body.DocumentID == "" {
			return nil, "", "documentId must not be empty"
		}
		persisted = true
	}
	if body.Query == nil && !persisted {
		return nil, "", "the request has no query parameter"
	}
	params := &graphql.RawParams{Variables: body.Variables, Extensions: body.Extensions}
	if body.Query != nil {
		params.Query = *body.Query
	}
	if body.OperationName != nil {
		params.OperationName = *body.OperationName
	}
	id := ""
	if body.DocumentID != nil {
		id = *body.DocumentID
	}
	return params, id, ""
}

// decodeJSON decodes with numbers kept as json.Number, so that large integers in variables
// (event data) stay exact, as gqlgen's transports do.
func decodeJSON(s string, into any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	return dec.Decode(into)
}

// responseMediaType is the media type of the answer, from the request's Accept header: the
// first of application/json and application/graphql-response+json it names; application/json
// when it names neither but accepts anything (*/*, application/*) or is absent, as the
// specification has it for legacy clients; application/graphql-response+json otherwise.
func responseMediaType(accept string) string {
	if accept == "" {
		return mediaJSON
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case mediaJSON, "*/*", "application/*":
			return mediaJSON
		case mediaGraphQLResponse:
			return mediaGraphQLResponse
		}
	}
	return mediaGraphQLResponse
}

// requestErrorStatus is the status of a request refused before it ran: a document that does
// not parse or validate, variables that do not coerce, an operation the principal may not run
// or beyond a limit. Under application/json it is 200, as the specification asks for a
// well-formed request whatever its errors; under application/graphql-response+json it is 4xx:
// 401 or 403 for authentication and authorization, 400 for everything else.
func requestErrorStatus(media string, errs gqlerror.List) int {
	if media == mediaJSON {
		return http.StatusOK
	}
	for _, e := range errs {
		switch e.Extensions["code"] {
		case CodeUnauthenticated:
			return http.StatusUnauthorized
		case CodeForbidden:
			return http.StatusForbidden
		}
	}
	return http.StatusBadRequest
}

// dataOnly reports whether r encodes as {"data": ...} alone: no errors, extensions or
// incremental delivery fields.
func dataOnly(r *graphql.Response) bool {
	return len(r.Errors) == 0 && len(r.Extensions) == 0 && r.Label == "" && r.Path == nil && r.HasNext == nil
}

func writeResponse(w http.ResponseWriter, v any) {
	_, _ = w.Write(encodeResponse(v))
}

// encodeResponse is a response's JSON.
func encodeResponse(v any) []byte {
	if r, ok := v.(*graphql.Response); ok && dataOnly(r) && !bytes.ContainsAny(r.Data, "<>&\u2028\u2029") {
		// Most answers: gqlgen has written data as JSON already, so compacting it is all that
		// json.Marshal would do, behind reflection. What json.Marshal would escape for HTML
		// goes the long way, so that the bytes are the same either way.
		data := r.Data
		if data == nil {
			data = json.RawMessage("null")
		}
		var b bytes.Buffer
		b.Grow(len(`{"data":}`) + len(data))
		b.WriteString(`{"data":`)
		if err := json.Compact(&b, data); err == nil {
			b.WriteByte('}')
			return b.Bytes()
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only a resolver's value that does not encode gets here; the status is written.
		b, _ = json.Marshal(map[string]any{"errors": []any{map[string]any{
			"message": "internal error", "extensions": map[string]any{"code": CodeInternal},
		}}})
	}
	return b
}
