package graph_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// countingTracer counts the statements sent through a pool.
type countingTracer struct {
	n   atomic.Int64
	mu  sync.Mutex
	sql []string
}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	c.mu.Lock()
	c.sql = append(c.sql, strings.Join(strings.Fields(data.SQL), " "))
	c.mu.Unlock()
	return ctx
}

func (*countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Order.customer and User.orders are read through data loaders: a page of 30 orders with their
// customers and each customer's orders costs three statements, not one per row. The loaders wait
// longer here than they do by default, so that each level's resolvers all reach them within the
// wait even on a loaded machine.
func TestLoadersReadOncePerBatch(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 10)
	store := eventstore.New(pool, eventstore.Options{})
	cmds := command.New(store, command.Options{})
	runner := projection.NewRunner(pool, store, projection.Default(), projection.Options{Poll: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var last eventstore.Position
	for i := range 10 {
		u, err := cmds.RegisterUser(context.Background(), fmt.Sprintf("U%d", i), fmt.Sprintf("u%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			o, err := cmds.CreateOrder(context.Background(), u.User.ID, []order.Item{{SKU: "A", Quantity: 1, UnitPrice: 1}})
			if err != nil {
				t.Fatal(err)
			}
			last = o.Position
		}
	}
	for _, name := range []string{"users", "orders"} {
		if err := runner.WaitFor(context.Background(), name, last, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// The server reads projections through a pool that counts statements.
	tracer := &countingTracer{}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	traced, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer traced.Close()
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store, Commands: cmds, Reader: query.New(traced), Projectors: runner, LoaderWait: 250 * time.Millisecond}, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	r := post(t, srv.URL, `{ orders(first: 30) { edges { node { id customer { name orders(first: 5) { edges { node { id } } } } } } } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	if got := strings.Count(string(r.Data), `"customer"`); got != 30 {
		t.Fatalf("%d customers in the answer, want 30", got)
	}
	if got := strings.Count(string(r.Data), `"orders":{"edges":[{`); got != 31 { // the top-level list and 30 customers'
		t.Fatalf("%d order lists in the answer, want 31", got)
	}
	// One statement per level: the orders, their customers, the customers' orders (one per
	// row would be 61).
	if n := tracer.n.Load(); n != 3 {
		t.Errorf("%d statements for 30 orders with customers and their orders, want 3:\n%s", n, strings.Join(tracer.sql, "\n"))
	}
}
