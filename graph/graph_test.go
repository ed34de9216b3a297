package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/dbtest"
	"github.com/strata-es/strata/internal/eventstore"
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
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	return r
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
