package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// hostileRequest is one malformed or hostile HTTP request and the refusal it must get.
type hostileRequest struct {
	name        string
	method      string // POST when empty
	urlQuery    string // the URL's query string: a GET's request
	contentType string // application/json when empty; "-" for none
	token       string // the writer's when empty; "-" for none
	body        []byte
	chunked     bool   // send the body without a Content-Length
	status      int    // 0: any 2xx/4xx but not 5xx
	code        string // extensions.code of the first error
}

func postBody(query string, vars map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(err)
	}
	return b
}

func appendBody(stream string, events any, expected any) []byte {
	return postBody(`mutation A($s: String!, $e: [EventInput!]!, $v: Int) { appendEvents(streamId: $s, events: $e, expectedVersion: $v) { position } }`,
		map[string]any{"s": stream, "e": events, "v": expected})
}

// getQuery is a GET's query string for the document query.
func getQuery(query string) string {
	return url.Values{"query": {query}}.Encode()
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// At least forty malformed or hostile requests: each is refused with a clear error and its
// code, none writes anything, and the server goes on serving.
func TestHostileInput(t *testing.T) {
	s := startAuthServer(t, "--max-subscriptions-per-connection", "5")
	a := s.addr
	writer := s.token(t, "walt", "writer", time.Hour)
	reader := s.token(t, "rita", "reader", time.Hour)
	expired := s.token(t, "walt", "writer", -time.Hour)
	pool := dbtest.PoolFor(t, s.url, 2)
	ctx := t.Context()

	// One good write first, so that a stream and a cursor exist to be attacked.
	if status, r := gqlAs(t, a, writer, `mutation { appendEvents(streamId: "target-1", events: [{type: "T", data: {}}]) { position } }`, nil); status != 200 || r.code() != "" {
		t.Fatalf("the good append: %d %+v", status, r.Errors)
	}
	countEvents := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countEvents()

	deepQuery := "{ users { edges { node { " + strings.Repeat("orders { edges { node { customer { ", 50) + "name" + strings.Repeat(" } } } }", 50) + " } } } }"
	aliases := &strings.Builder{}
	aliases.WriteString("{ ")
	for i := range 10000 {
		fmt.Fprintf(aliases, "a%d: __typename ", i)
	}
	aliases.WriteString("}")
	ev := func(data any) []any { return []any{map[string]any{"type": "T", "data": data}} }
	page := `query P($f: Int, $c: String) { allEvents(first: $f, after: $c) { edges { cursor } } }`
	forged := base64.StdEncoding.EncodeToString([]byte("00000000000000000000:99999999999999999999"))

	cases := []hostileRequest{
		{name: "invalid JSON", body: []byte(`{"query": `), status: 400, code: "BAD_REQUEST"},
		{name: "body is a JSON array (a batch)", body: []byte(`[{"query": "{ projections { name } }"}]`), status: 400, code: "BAD_REQUEST"},
		{name: "body is a JSON string", body: []byte(`"{ projections { name } }"`), status: 400, code: "BAD_REQUEST"},
		{name: "empty body", body: nil, status: 400, code: "BAD_REQUEST"},
		{name: "invalid UTF-8 in the body", body: []byte("{\"query\": \"{ stream(id: \\\"\xff\xfe\\\") { version } }\"}"), status: 400, code: "BAD_REQUEST"},
		{name: "raw NUL byte in the body", body: []byte("{\"query\": \"{ projections { name } }\x00\"}"), status: 400, code: "BAD_REQUEST"},
		{name: "text/plain", contentType: "text/plain", body: postBody(`{ projections { name } }`, nil), status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "no content type", contentType: "-", body: postBody(`{ projections { name } }`, nil), status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "a forged form post", contentType: "application/x-www-form-urlencoded", body: []byte(`query=mutation{appendEvents(streamId:"x",events:[{type:"T",data:{}}]){position}}`), status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "multipart", contentType: "multipart/form-data; boundary=x", body: []byte("--x\r\n\r\n--x--"), status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		// GET runs queries only (the GraphQL over HTTP specification: 405 for a mutation); the
		// role is checked first, so a reader is told FORBIDDEN whatever the method.
		{name: "mutation over GET", method: "GET", urlQuery: getQuery(registerMutation), status: 405, code: "BAD_REQUEST"},
		{name: "a reader's mutation over GET", method: "GET", token: reader, urlQuery: getQuery(registerMutation), code: "FORBIDDEN"},
		{name: "subscription over GET", method: "GET", urlQuery: getQuery(`subscription { events { id } }`), status: 405, code: "BAD_REQUEST"},
		{name: "GET without a query", method: "GET", status: 400, code: "BAD_REQUEST"},
		{name: "GET with variables that are not JSON", method: "GET", urlQuery: getQuery(page) + "&variables=%7Bnope", status: 400, code: "BAD_REQUEST"},
		{name: "GET without a token", method: "GET", token: "-", urlQuery: getQuery(`{ projections { name } }`), status: 401, code: "UNAUTHENTICATED"},
		{name: "depth-200 query over GET", method: "GET", urlQuery: getQuery(deepQuery), code: "QUERY_TOO_DEEP"},
		{name: "PUT", method: "PUT", body: postBody(`{ projections { name } }`, nil), status: 405, code: "BAD_REQUEST"},
		{name: "a 50 MB body", body: append(append([]byte(`{"query": "{ projections { name } }", "pad": "`), bytes.Repeat([]byte("x"), 50<<20)...), '"', '}'), status: 413, code: "REQUEST_TOO_LARGE"},
		{name: "a 50 MB body without a length", chunked: true, body: append(append([]byte(`{"query": "{ projections { name } }", "pad": "`), bytes.Repeat([]byte("x"), 50<<20)...), '"', '}'), status: 413, code: "REQUEST_TOO_LARGE"},
		{name: "depth-200 query", body: postBody(deepQuery, nil), code: "QUERY_TOO_DEEP"},
		{name: "10,000 aliases", body: postBody(aliases.String(), nil), code: "GRAPHQL_PARSE_FAILED"},
		{name: "empty query", body: postBody("", nil), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "unknown field", body: postBody(`{ nothing }`, nil), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "unknown argument", body: postBody(`{ allEvents(firstt: 1) { edges { cursor } } }`, nil), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "wrong literal type", body: postBody(`{ allEvents(first: "ten") { edges { cursor } } }`, nil), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "wrong variable type", body: postBody(page, map[string]any{"f": "ten"}), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "variables that are not an object", body: []byte(`{"query": "{ projections { name } }", "variables": [1, 2]}`), status: 400, code: "BAD_REQUEST"},
		{name: "unknown operation name", body: []byte(`{"query": "query A { projections { name } }", "operationName": "B"}`), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "syntax error", body: postBody(`{ projections { name }`, nil), code: "GRAPHQL_PARSE_FAILED"},
		{name: "negative first", body: postBody(page, map[string]any{"f": -1}), code: "BAD_USER_INPUT"},
		{name: "huge first", body: postBody(page, map[string]any{"f": 2147483647}), code: "BAD_USER_INPUT"},
		{name: "first beyond 32 bits", body: postBody(page, map[string]any{"f": 99999999999}), code: "BAD_USER_INPUT"},
		{name: "garbage cursor", body: postBody(page, map[string]any{"c": "%%%not-a-cursor"}), code: "BAD_USER_INPUT"},
		{name: "forged cursor", body: postBody(page, map[string]any{"c": forged}), code: "BAD_USER_INPUT"},
		{name: "10 KB cursor", body: postBody(page, map[string]any{"c": strings.Repeat("0", 10_000)}), code: "BAD_USER_INPUT"},
		{name: "100 KB stream id", body: appendBody(strings.Repeat("s", 100_000), ev(map[string]any{}), nil), code: "BAD_USER_INPUT"},
		{name: "NUL in the stream id", body: appendBody("a\x00b", ev(map[string]any{}), nil), code: "BAD_USER_INPUT"},
		{name: "NUL in the event type", body: appendBody("s-1", []any{map[string]any{"type": "T\x00", "data": map[string]any{}}}, nil), code: "BAD_USER_INPUT"},
		{name: "NUL in the data", body: appendBody("s-1", ev(map[string]any{"note": "a\x00b"}), nil), code: "BAD_USER_INPUT"},
		{name: "expectedVersion -5", body: appendBody("target-1", ev(map[string]any{}), -5), code: "BAD_USER_INPUT"},
		{name: "data is an array", body: appendBody("s-1", ev([]any{1, 2}), nil), code: "BAD_USER_INPUT"},
		{name: "data is a string", body: appendBody("s-1", ev("hello"), nil), code: "BAD_USER_INPUT"},
		{name: "data is null", body: appendBody("s-1", ev(nil), nil), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "deeply nested data", body: []byte(`{"query": "mutation A($e: [EventInput!]!) { appendEvents(streamId: \"s-1\", events: $e) { position } }", "variables": {"e": [{"type": "T", "data": {"x": ` + nested(5000) + `}}]}}`), code: "BAD_USER_INPUT"},
		{name: "metadata is an array", body: appendBody("s-1", []any{map[string]any{"type": "T", "data": map[string]any{}, "metadata": []any{}}}, nil), code: "BAD_USER_INPUT"},
		{name: "event id not a UUID", body: appendBody("s-1", []any{map[string]any{"id": "not-a-uuid", "type": "T", "data": map[string]any{}}}, nil), code: "BAD_USER_INPUT"},
		{name: "no events", body: appendBody("s-1", []any{}, nil), code: "BAD_USER_INPUT"},
		{name: "1,001 events", body: appendBody("s-1", func() []any {
			out := make([]any, 1001)
			for i := range out {
				out[i] = map[string]any{"type": "T", "data": map[string]any{}}
			}
			return out
		}(), nil), code: "BAD_USER_INPUT"},
		{name: "stale expectedVersion", body: appendBody("target-1", ev(map[string]any{}), 7), code: "WRONG_EXPECTED_VERSION"},
		{name: "money that is not a number", body: postBody(`mutation { payOrder(id: "00000000-0000-0000-0000-000000000001", amount: "NaN") { position } }`, nil), code: "BAD_USER_INPUT"},
		{name: "an id that is not a UUID", body: postBody(`{ order(id: "../../etc/passwd") { status } }`, nil), code: "BAD_USER_INPUT"},
		{name: "no token", token: "-", body: postBody(`{ projections { name } }`, nil), status: 401, code: "UNAUTHENTICATED"},
		{name: "expired token", token: expired, body: postBody(`{ projections { name } }`, nil), status: 401, code: "UNAUTHENTICATED"},
		{name: "a token that is not a token", token: "Basic dXNlcjpwYXNz", body: postBody(`{ projections { name } }`, nil), status: 401, code: "UNAUTHENTICATED"},
		{name: "a reader calling a mutation", token: reader, body: appendBody("s-1", ev(map[string]any{}), nil), code: "FORBIDDEN"},
		{name: "a writer rebuilding a projection", body: postBody(`mutation { rebuildProjection(name: "users") { name } }`, nil), code: "FORBIDDEN"},
	}
	if len(cases) < 40 {
		t.Fatalf("%d cases; the issue asks for at least 40", len(cases))
	}
	for _, tc := range cases {
		status, body := hostilePost(t, a, writer, tc)
		var r gqlResponse
		if err := json.Unmarshal(body, &r); err != nil || len(r.Errors) == 0 {
			t.Errorf("%s: %d %.300s: no GraphQL error (%v)", tc.name, status, body, err)
		} else if r.code() != tc.code || r.Errors[0].Message == "" {
			t.Errorf("%s: %d code %q (%q), want %q", tc.name, status, r.code(), r.Errors[0].Message, tc.code)
		}
		if (tc.status != 0 && status != tc.status) || status >= 500 {
			t.Errorf("%s: HTTP %d, want %d", tc.name, status, tc.status)
		}
		if n := countEvents(); n != before {
			t.Fatalf("%s: %d events written", tc.name, n-before)
		}
	}

	// Over WebSocket: no credential, and a flood of subscribe messages.
	url := "ws://" + a + "/query"
	var closed *wsclient.ErrClosed
	if _, err := wsclient.Dial(ctx, url, wsclient.TransportWS, nil, nil); !errors.As(err, &closed) || closed.Code != 4401 {
		t.Errorf("an unauthenticated subscription: %v, want a close with 4401", err)
	}
	c, err := wsclient.Dial(ctx, url, wsclient.TransportWS, nil, map[string]any{"Authorization": "Bearer " + reader})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	const flood = 500
	for i := range flood {
		if err := c.Subscribe(fmt.Sprint(i), `subscription { events { id } }`, nil); err != nil {
			t.Fatalf("subscribe %d: %v", i, err)
		}
	}
	// A message over the size limit, and one that is not JSON, end their connections (and
	// only those).
	for name, msg := range map[string][]byte{
		"a 2 MB message":             append(append([]byte(`{"type":"subscribe","id":"x","payload":{"query":"`), bytes.Repeat([]byte("x"), 2<<20)...), []byte(`"}}`)...),
		"a message that is not JSON": []byte(`{"type": "subscribe", "id": `),
	} {
		bad, err := wsclient.Dial(ctx, url, wsclient.TransportWS, nil, map[string]any{"Authorization": "Bearer " + s.token(t, name, "reader", time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := bad.NetConn().WriteMessage(websocket.TextMessage, msg); err != nil {
			// The server may close the connection before the client has written all of a
			// message over the limit: the refusal came first, and the write meets a reset.
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				t.Errorf("%s: %v", name, err)
			}
			_ = bad.Close()
			continue
		}
		_, err = bad.Next(20 * time.Second)
		if !errors.As(err, &closed) || (closed.Code != websocket.CloseMessageTooBig && closed.Code != 4400 && closed.Code != websocket.CloseProtocolError) {
			t.Errorf("%s: %v, want the connection closed with a protocol code", name, err)
		}
		_ = bad.Close()
	}
	refused := 0
	for refused < flood-5 {
		r, err := c.Next(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d refusals of the flood: %v", refused, err)
		}
		if strings.Contains(string(r.Errors), "LIMIT_EXCEEDED") {
			refused++
		}
	}
	if n := countEvents(); n != before {
		t.Errorf("the WebSocket cases wrote %d events", n-before)
	}
	// Still serving, over both transports: the five admitted subscriptions see a new event.
	if status, r := gqlAs(t, a, writer, `mutation { appendEvents(streamId: "target-1", events: [{type: "T", data: {}}]) { position } }`, nil); status != 200 || r.code() != "" {
		t.Fatalf("a good append after the hostile requests: %d %+v", status, r.Errors)
	}
	got := 0
	for got < 5 {
		r, err := c.Next(30 * time.Second)
		if err != nil {
			t.Fatalf("the admitted subscriptions after the flood: %d of 5 delivered: %v", got, err)
		}
		if len(r.Data) > 0 {
			got++
		}
	}
}

// hostilePost sends tc and returns the status and body.
func hostilePost(t *testing.T, addr, writer string, tc hostileRequest) (int, []byte) {
	t.Helper()
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader = bytes.NewReader(tc.body)
	if tc.chunked {
		body = struct{ io.Reader }{body} // hides the length from net/http
	}
	target := "http://" + addr + "/query"
	if tc.urlQuery != "" {
		target += "?" + tc.urlQuery
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	switch tc.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		req.Header.Set("Content-Type", tc.contentType)
	}
	switch tc.token {
	case "":
		req.Header.Set("Authorization", "Bearer "+writer)
	case "-":
	default:
		if strings.HasPrefix(tc.token, "Basic ") {
			req.Header.Set("Authorization", tc.token)
		} else {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", tc.name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read the answer: %v", tc.name, err)
	}
	return resp.StatusCode, answer
}
