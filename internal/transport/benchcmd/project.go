package benchcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	cmdhandler "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/transport/cli"
)

// benchProjectCmd runs `strata bench project`: --orders orders of three events each (created,
// paid, shipped) are written to a scratch database, then the orders projection is rebuilt from
// the first event, which is the path a projector takes when it catches up; one JSON line with
// the events applied per second.
func benchProjectCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	var (
		orders  int
		scratch string
	)
	cfg, _, err := cli.Parse(env, "bench project", args, func(_ *config.Config, f *config.FlagSet) {
		f.Int(&orders, "orders", "STRATA_BENCH_ORDERS", 20000, "orders written before the projection is rebuilt (three events each)")
		f.String(&scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "database made afresh on the server for the run and dropped after it")
	})
	if err != nil {
		return err
	}
	if orders < 1 {
		return fmt.Errorf("%w: --orders must be at least 1", cli.ErrUsage)
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	pool, cleanup, err := scratchPool(ctx, pg, cfg, logger, scratch, nil)
	if err != nil {
		return err
	}
	defer cleanup()
	store := eventstore.New(pool, eventstore.Options{Upcasters: cmdhandler.Upcasters(aggregates.All())})

	started := time.Now()
	const writers = 8
	customer := uuid.NewString() // one customer orders everything
	g, gctx := errgroup.WithContext(ctx)
	lasts := make([]eventstore.Position, writers)
	for w := range writers {
		g.Go(func() error {
			for i := w; i < orders; i += writers {
				pos, err := appendOrder(gctx, store, customer)
				if err != nil {
					return err
				}
				lasts[w] = pos
				if i > 0 && i%5000 == 0 {
					fmt.Fprintf(env.Stderr, "bench: %d of %d orders written, %s\n", i, orders, time.Since(started).Round(time.Second))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	written := time.Since(started)
	// The rebuild reads the global order, which shows events once every older transaction in
	// the cluster has ended: wait until all the orders are readable, or it would find fewer.
	readable, err := store.WaitReadable(ctx, slices.MaxFunc(lasts, eventstore.Position.Compare), time.Minute)
	if err != nil {
		return err
	}
	if !readable {
		return errors.New("the orders written were not all readable within a minute: a transaction elsewhere on the server holds the global order back")
	}

	runner := projection.NewRunner(pool, store, projection.Default(), projection.Options{}, logger)
	started = time.Now()
	last := started
	if err := runner.Rebuild(ctx, "orders", func(applied int64, position string) {
		if time.Since(last) >= time.Second {
			last = time.Now()
			fmt.Fprintf(env.Stderr, "bench: projecting, %d events applied, at %s\n", applied, position)
		}
	}); err != nil {
		return err
	}
	took := time.Since(started)
	var rows int
	if err := pool.QueryRow(ctx, pgsql.BenchShippedOrders).Scan(&rows); err != nil {
		return err
	}
	if rows != orders {
		return fmt.Errorf("the rebuilt projection holds %d shipped orders, want %d", rows, orders)
	}
	events := 3 * orders
	out, err := json.Marshal(map[string]any{
		"orders": orders, "events": events,
		"write_seconds": written.Seconds(), "project_seconds": took.Seconds(),
		"projected_events_per_sec": float64(events) / took.Seconds(),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, string(out))
	return err
}

// appendOrder writes one order's whole life in one append: created, paid, shipped; it returns
// the position of the last.
func appendOrder(ctx context.Context, store *eventstore.Store, customer string) (eventstore.Position, error) {
	id := uuid.NewString()
	items := []order.Item{{SKU: "A", Quantity: 2, UnitPrice: 999}}
	created, _ := json.Marshal(order.Created{OrderID: id, CustomerID: customer, Items: items, Total: 1998})
	paid, _ := json.Marshal(order.PaidEvent{Amount: 1998})
	shipped, _ := json.Marshal(order.ShippedEvent{Carrier: "UPS", TrackingNumber: "1Z"})
	res, err := store.Append(ctx, order.StreamID(id), eventstore.NoStream(), []eventstore.EventData{
		{Type: order.TypeCreated, SchemaVersion: 2, Data: created},
		{Type: order.TypePaid, Data: paid},
		{Type: order.TypeShipped, Data: shipped},
	})
	return res.Position, err
}
