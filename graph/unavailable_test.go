package graph_test

import (
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// A database that cannot be reached is the server's trouble, not the client's: UNAVAILABLE,
// retryable, and nothing about where the database is.
func TestUnreachableDatabaseIsUnavailableAndRetryable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now: every connection attempt is refused
	pool, err := pgxpool.New(t.Context(), "postgres://postgres@"+addr+"/strata?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.New(pool, eventstore.Options{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"a read", `query { stream(id: "order-1") { version } }`, nil},
		{"an append with event ids", appendMutation, map[string]any{"s": "ledger-1", "e": []any{
			map[string]any{"id": "0190b6a4-0000-7000-8000-000000000001", "type": "Credited", "data": map[string]any{}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ext, msg := gqlErr(t, post(t, srv.URL, tt.query, tt.vars))
			if code != graph.CodeUnavailable || ext["retryable"] != true {
				t.Errorf("code %s, extensions %v (%s); want %s with retryable true", code, ext, msg, graph.CodeUnavailable)
			}
			if strings.Contains(msg, addr) || strings.Contains(msg, "postgres") {
				t.Errorf("message %q tells where the database is", msg)
			}
		})
	}
}
