package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// post sends a GraphQL request over real HTTP and decodes the answer.
func post(t *testing.T, url, query string, vars map[string]any) response {
	t.Helper()
	return postRequest(t, url, map[string]any{"query": query, "variables": vars})
}

// postRequest sends a GraphQL request body over real HTTP and decodes the answer.
func postRequest(t *testing.T, url string, request map[string]any) response {
	t.Helper()
	r, err := sendRequest(t.Context(), url, request)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sendRequest is postRequest for goroutines other than the test's, which must not call
// t.Fatal: it returns the error instead.
func sendRequest(ctx context.Context, url string, request map[string]any) (response, error) {
	body, err := json.Marshal(request)
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		return response{}, fmt.Errorf("status %d, body %s: %w", resp.StatusCode, raw, err)
	}
	return r, nil
}

func TestStreamQuery(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	store := eventstore.New(pool, eventstore.Options{})
	events := []eventstore.EventData{{Type: "OrderCreated", Data: json.RawMessage(`{}`)}, {Type: "OrderPaid", Data: json.RawMessage(`{}`)}}
	if _, err := store.Append(context.Background(), "order-1", eventstore.NoStream(), events); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store}, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	const q = `query($id: String!) { stream(id: $id) { id version } }`
	tests := []struct {
		name     string
		id       string
		wantData string
		wantCode string
	}{
		{"existing stream", "order-1", `{"stream":{"id":"order-1","version":2}}`, ""},
		{"missing stream is null", "order-2", `{"stream":null}`, ""},
		{"invalid id is the client's error", "", `{"stream":null}`, graph.CodeBadUserInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, srv.URL, q, map[string]any{"id": tt.id})
			if string(r.Data) != tt.wantData {
				t.Errorf("data = %s, want %s", r.Data, tt.wantData)
			}
			switch {
			case tt.wantCode == "" && len(r.Errors) > 0:
				t.Errorf("errors: %+v", r.Errors)
			case tt.wantCode != "" && (len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != tt.wantCode):
				t.Errorf("errors = %+v, want one with code %s", r.Errors, tt.wantCode)
			}
		})
	}

	t.Run("a database failure is an internal error that leaks nothing", func(t *testing.T) {
		pool.Close() // every query now fails inside the server
		r := post(t, srv.URL, q, map[string]any{"id": "order-1"})
		if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != graph.CodeInternal || r.Errors[0].Message != "internal error" {
			t.Errorf("errors = %+v", r.Errors)
		}
	})
}

// gqlErr is the first error of a response, or fails the test.
func gqlErr(t *testing.T, r response) (code string, ext map[string]any, msg string) {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("errors = %+v, want exactly one", r.Errors)
	}
	code, _ = r.Errors[0].Extensions["code"].(string)
	return code, r.Errors[0].Extensions, r.Errors[0].Message
}

func newServer(t *testing.T, maxPage int) (*httptest.Server, *eventstore.Store) {
	t.Helper()
	store := eventstore.New(dbtest.Pool(t), eventstore.Options{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store, MaxPageSize: maxPage}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv, store
}

const appendMutation = `mutation($s: String!, $e: [EventInput!]!, $v: Int) {
  appendEvents(streamId: $s, events: $e, expectedVersion: $v) {
    streamId nextExpectedVersion position repeated
    events { id streamId version position type schemaVersion data metadata recordedAt }
  }
}`

func TestAppendEventsAndReadThemBack(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, 50)
	events := []any{
		map[string]any{"id": "0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f60", "type": "InvoiceCreated",
			"data":     map[string]any{"big": json.Number("12345678901234567890"), "items": []any{map[string]any{"sku": "A", "qty": 2}}},
			"metadata": map[string]any{"actor": "ann", "correlationId": "c-1"}},
		map[string]any{"type": "InvoicePaid", "data": map[string]any{"amount": "19.98"}, "schemaVersion": 2},
	}
	vars := map[string]any{"s": "invoice-7", "e": events, "v": 0}
	r := post(t, srv.URL, appendMutation, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("append: %+v", r.Errors)
	}
	var got struct {
		AppendEvents struct {
			StreamID            string
			NextExpectedVersion int
			Position            string
			Repeated            bool
			Events              []struct {
				ID, StreamID, Position, Type, RecordedAt string
				Version, SchemaVersion                   int
				Data, Metadata                           json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(r.Data, &got); err != nil {
		t.Fatal(err)
	}
	a := got.AppendEvents
	if a.StreamID != "invoice-7" || a.NextExpectedVersion != 2 || a.Repeated || len(a.Events) != 2 || a.Position != a.Events[1].Position {
		t.Fatalf("append result = %+v", a)
	}
	if a.Events[0].ID != "0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f60" || a.Events[1].SchemaVersion != 2 || a.Events[0].Version != 1 || a.Events[0].RecordedAt == "" {
		t.Errorf("appended events = %+v", a.Events)
	}

	t.Run("retrying with the same ids writes nothing", func(t *testing.T) {
		events[1].(map[string]any)["id"] = a.Events[1].ID
		r := post(t, srv.URL, appendMutation, vars)
		if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"repeated":true`) || !strings.Contains(string(r.Data), a.Position) {
			t.Errorf("retry: %s %+v", r.Data, r.Errors)
		}
	})

	t.Run("read back through the stream, numbers exact", func(t *testing.T) {
		r := post(t, srv.URL, `{ stream(id: "invoice-7") { id version events { edges { cursor node { version type data metadata } } pageInfo { hasNextPage endCursor } } } }`, nil)
		want := `{"stream":{"id":"invoice-7","version":2,"events":{"edges":[` +
			`{"cursor":"` + a.Events[0].Position + `","node":{"version":1,"type":"InvoiceCreated","data":{"big": 12345678901234567890, "items": [{"qty": 2, "sku": "A"}]},"metadata":{"actor": "ann", "correlationId": "c-1"}}},` +
			`{"cursor":"` + a.Events[1].Position + `","node":{"version":2,"type":"InvoicePaid","data":{"amount": "19.98"},"metadata":{}}}],` +
			`"pageInfo":{"hasNextPage":false,"endCursor":"` + a.Events[1].Position + `"}}}}`
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if string(r.Data) != compact.String() || len(r.Errors) > 0 {
			t.Errorf("got  %s %+v\nwant %s", r.Data, r.Errors, want)
		}
	})

	pages := []struct{ args, want string }{
		{`first: 1`, `[1] true`},
		{`fromVersion: 2`, `[2] false`},
		{`backward: true`, `[2 1] false`},
		{`backward: true, first: 1`, `[2] true`},
		{`backward: true, fromVersion: 1`, `[1] false`},
	}
	for _, p := range pages {
		t.Run("stream events "+p.args, func(t *testing.T) {
			r := post(t, srv.URL, `{ stream(id: "invoice-7") { events(`+p.args+`) { edges { node { version } } pageInfo { hasNextPage } } } }`, nil)
			var page struct {
				Stream struct {
					Events struct {
						Edges    []struct{ Node struct{ Version int } }
						PageInfo struct{ HasNextPage bool }
					}
				}
			}
			if err := json.Unmarshal(r.Data, &page); err != nil || len(r.Errors) > 0 {
				t.Fatalf("%s %+v %v", r.Data, r.Errors, err)
			}
			var versions []int
			for _, e := range page.Stream.Events.Edges {
				versions = append(versions, e.Node.Version)
			}
			if got := fmt.Sprint(versions, page.Stream.Events.PageInfo.HasNextPage); got != p.want {
				t.Errorf("got %s, want %s", got, p.want)
			}
		})
	}

	t.Run("wrong expected version", func(t *testing.T) {
		r := post(t, srv.URL, appendMutation, map[string]any{"s": "invoice-7", "e": []any{map[string]any{"type": "X", "data": map[string]any{}}}, "v": 1})
		code, ext, msg := gqlErr(t, r)
		if code != graph.CodeWrongExpectedVersion || ext["actualVersion"] != float64(2) || ext["expectedVersion"] != float64(1) || !strings.Contains(msg, "version 2") {
			t.Errorf("code %s, extensions %v, message %q", code, ext, msg)
		}
	})

	refusals := []struct {
		name, query string
		vars        map[string]any
		mention     string
	}{
		{"data not an object", appendMutation, map[string]any{"s": "invoice-8", "e": []any{map[string]any{"type": "X", "data": []any{1}}}}, "events[0].data"},
		{"id not a uuid", appendMutation, map[string]any{"s": "invoice-8", "e": []any{map[string]any{"id": "nope", "type": "X", "data": map[string]any{}}}}, "events[0].id"},
		{"empty stream id", appendMutation, map[string]any{"s": "", "e": []any{map[string]any{"type": "X", "data": map[string]any{}}}}, "streamId"},
		{"schema version 0", appendMutation, map[string]any{"s": "invoice-8", "e": []any{map[string]any{"type": "X", "data": map[string]any{}, "schemaVersion": 0}}}, "schemaVersion"},
		{"an id reused with other content", appendMutation, map[string]any{"s": "invoice-9", "e": []any{map[string]any{"id": a.Events[0].ID, "type": "X", "data": map[string]any{}}}}, a.Events[0].ID},
		{"first over the cap", `{ allEvents(first: 51) { edges { cursor } } }`, nil, "1..50"},
		{"first zero", `{ allEvents(first: 0) { edges { cursor } } }`, nil, "first"},
		{"stream page over the cap", `{ stream(id: "invoice-7") { events(first: 51) { edges { cursor } } } }`, nil, "1..50"},
		{"a cursor the server never gave", `{ allEvents(after: "bogus") { edges { cursor } } }`, nil, "position"},
	}
	for _, tt := range refusals {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			code, _, msg := gqlErr(t, post(t, srv.URL, tt.query, tt.vars))
			if code != graph.CodeBadUserInput || !strings.Contains(msg, tt.mention) {
				t.Errorf("code %s, message %q; want BAD_USER_INPUT mentioning %q", code, msg, tt.mention)
			}
		})
	}
	r = post(t, srv.URL, `{ a: stream(id: "invoice-8") { id } b: stream(id: "invoice-9") { id } }`, nil)
	if string(r.Data) != `{"a":null,"b":null}` {
		t.Errorf("refused appends left streams behind: %s", r.Data)
	}
}

// TestAllEventsPagingWhileWritersRun pages allEvents with after: endCursor while clients append
// over HTTP, and checks that the reader sees every appended event exactly once, in order.
func TestAllEventsPagingWhileWritersRun(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, 0)
	const writers, appends = 6, 20
	var wg sync.WaitGroup
	positions := make(chan string, writers*appends*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < appends; i++ {
				ev := map[string]any{"type": "Tick", "data": map[string]any{"w": w, "i": i}}
				// Not post: a writer is not the test's goroutine, so it reports errors with t.Errorf.
				r, err := sendRequest(t.Context(), srv.URL, map[string]any{
					"query":     `mutation($s: String!, $e: [EventInput!]!) { appendEvents(streamId: $s, events: $e) { events { position } } }`,
					"variables": map[string]any{"s": fmt.Sprintf("tick-%d", i%5), "e": []any{ev, ev}},
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if len(r.Errors) > 0 {
					t.Errorf("writer %d: %+v", w, r.Errors)
					return
				}
				var res struct {
					AppendEvents struct{ Events []struct{ Position string } }
				}
				if err := json.Unmarshal(r.Data, &res); err != nil {
					t.Error(err)
					return
				}
				for _, e := range res.AppendEvents.Events {
					positions <- e.Position
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var seen []string
	var cursor any // null: from the start
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := post(t, srv.URL, `query($after: String) { allEvents(first: 7, after: $after) { edges { cursor } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": cursor})
		var page struct {
			AllEvents struct {
				Edges    []struct{ Cursor string }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		if err := json.Unmarshal(r.Data, &page); err != nil || len(r.Errors) > 0 {
			t.Fatalf("page: %s %+v %v", r.Data, r.Errors, err)
		}
		for _, e := range page.AllEvents.Edges {
			seen = append(seen, e.Cursor)
		}
		if page.AllEvents.PageInfo.EndCursor != nil {
			cursor = *page.AllEvents.PageInfo.EndCursor
		}
		finished := false
		select {
		case <-done:
			finished = len(seen) >= len(positions)
		default:
		}
		if finished && !page.AllEvents.PageInfo.HasNextPage {
			break
		}
		if len(page.AllEvents.Edges) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	<-done
	close(positions)
	want := map[string]bool{}
	for p := range positions {
		want[p] = true
	}
	if len(want) != writers*appends*2 {
		t.Fatalf("%d events appended, want %d", len(want), writers*appends*2)
	}
	for i, p := range seen {
		if !want[p] {
			t.Fatalf("read position %s that no append returned, or read it twice", p)
		}
		delete(want, p)
		if i > 0 && seen[i-1] >= p {
			t.Fatalf("cursor %s after %s: not in order", p, seen[i-1])
		}
	}
	if len(want) > 0 {
		t.Fatalf("the reader never saw %d appended events", len(want))
	}
}
