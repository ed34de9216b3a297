package graph

import (
	"context"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/strata-es/strata/internal/platform/metrics"
	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/transport/sse"
)

// mediaEventStream is the media type of Server-Sent Events.
const mediaEventStream = "text/event-stream"

// overSSE serves GraphQL over Server-Sent Events on /query: the graphql-sse protocol's
// distinct connections mode, chosen by a request whose Accept names text/event-stream. Each
// request runs one operation, its request as over plain HTTP (a POST of JSON, or a GET with the
// request in its URL: queries and subscriptions only). The answer is a stream of `event: next`
// messages, one per result (a query's or mutation's one, each of a subscription's events),
// ended by `event: complete` once the operation is done. A request GraphQL refuses before it
// runs (parse, validation, a role too weak, a limit) is answered the same way: one next
// carrying the errors, then complete, which the graphql-sse client hands to the subscriber as a
// result with errors; a 4xx it would take for a network failure and retry. A stream the server
// ends (a slow consumer, the server stopping, an expired token, a failed subscription) ends
// without complete, after a comment saying why: the client sees the connection end with its
// operation open and resubscribes with after set to the last position it received.
//
// gqlgen's transport.SSE is not used: it sets no write deadline (a client that stops reading
// holds the handler for ever), takes POST only, logs with the log package, and answers a
// refused request with a JSON body the graphql-sse client cannot read.
type overSSE struct {
	limits       Limits
	conns        *auth.ConnLimiter // the principal's connections, shared with WebSocket
	streams      *sse.Registry
	writeTimeout time.Duration
	keepAlive    time.Duration
	metrics      *metrics.Metrics
	logger       *slog.Logger
}

var _ graphql.Transport = overSSE{}

// WantsEventStream reports whether r asks for Server-Sent Events: its Accept names
// text/event-stream (with a non-zero q).
func WantsEventStream(r *http.Request) bool {
	for _, accept := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(accept, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == mediaEventStream && strings.TrimSpace(params["q"]) != "0" {
				return true
			}
		}
	}
	return false
}

func (overSSE) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && (r.Method == http.MethodGet || r.Method == http.MethodPost) && WantsEventStream(r)
}

func (t overSSE) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	params, documentID, msg := readParams(r)
	if msg != "" {
		writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	ctx := r.Context()
	if documentID != "" {
		ctx = context.WithValue(ctx, documentIDKey{}, documentID) // persistedQueries reads it
	}
	// A stream holds a connection as a WebSocket does, so it counts against the same cap.
	p, _ := auth.FromContext(ctx)
	release, err := t.conns.Acquire(p)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeHTTPError(w, http.StatusTooManyRequests, CodeLimitExceeded, err.Error())
		return
	}
	defer release()
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs == nil && r.Method == http.MethodGet && oc.Operation.Operation == ast.Mutation {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, http.StatusMethodNotAllowed, CodeBadRequest, "GET runs queries and subscriptions only: send mutations with POST")
		return
	}

	stream, ctx, err := sse.Start(w, r.WithContext(ctx), sse.Options{WriteTimeout: t.writeTimeout, KeepAlive: t.keepAlive, Registry: t.streams})
	if err != nil {
		t.logger.DebugContext(r.Context(), "sse stream could not start", "err", err)
		return
	}
	defer stream.Close()
	if !p.Expires.IsZero() {
		// As a WebSocket is closed when its token expires, so is a stream.
		expire := time.AfterFunc(time.Until(p.Expires), func() {
			stream.End("the token has expired; subscribe again with a fresh one and after set to the last position received")
		})
		defer expire.Stop()
	}
	if errs != nil {
		// A request error: nothing ran, so the result has no data entry (not even null).
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs)
		if t.send(ctx, stream, struct {
			Errors     gqlerror.List  `json:"errors"`
			Extensions map[string]any `json:"extensions,omitempty"`
		}{resp.Errors, resp.Extensions}) {
			_ = stream.Event("complete", "")
		}
		return
	}
	if oc.Operation.Operation != ast.Subscription {
		// A query or mutation is bounded as over plain HTTP; limitRequests left it unbounded,
		// not knowing which it was.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.limits.RequestTimeout)
		defer cancel()
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		if !t.send(ctx, stream, resp) {
			return
		}
	}
	select {
	case <-stream.Ended(): // ended by the server, with the reason in a comment: no complete
		t.ended(ctx, stream)
		return
	case <-r.Context().Done(): // the client went away
		return
	default:
	}
	if err := stream.Event("complete", ""); err != nil {
		t.ended(ctx, stream)
	}
}

// send writes one result as a next event, and reports whether the stream is still open.
func (t overSSE) send(ctx context.Context, stream *sse.Stream, v any) bool {
	if err := stream.Event("next", string(encodeResponse(v))); err != nil {
		t.ended(ctx, stream)
		return false
	}
	return true
}

// ended logs a stream the server ended, and counts a slow consumer's.
func (t overSSE) ended(ctx context.Context, stream *sse.Stream) {
	if stream.SlowConsumer() {
		t.metrics.SlowConsumerDropped()
		t.logger.WarnContext(ctx, "subscriber dropped: sse write timed out; stream ended", "reason", stream.Reason())
		return
	}
	t.logger.DebugContext(ctx, "sse stream ended", "reason", stream.Reason())
}
