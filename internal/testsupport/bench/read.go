package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ReadOptions configures a read benchmark: clients reading orders by id through the GraphQL API.
type ReadOptions struct {
	Clients  int           // concurrent clients, each reading in a loop (--writers)
	Duration time.Duration // how long to measure, when Count is 0
	// Count, when positive, is how many reads to attempt in all, over all clients (--appends):
	// the run ends once they have completed (or ctx ends), whatever Duration says.
	Count int
	// Progress, when not nil, receives a line per second.
	Progress io.Writer
}

// ReadResult is what a read benchmark measured; it prints as one JSON line.
type ReadResult struct {
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	Reads       int64   `json:"reads"`
	ReadsPerSec float64 `json:"reads_per_sec"`
	Errors      int64   `json:"errors"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
}

// Validate checks the options before anything runs; the flags named are bench read's.
func (o ReadOptions) Validate() error {
	var errs []error
	if o.Clients < 1 || o.Clients > 10000 {
		errs = append(errs, fmt.Errorf("--writers (clients) must be from 1 to 10000, not %d", o.Clients))
	}
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("--appends (reads) must not be negative, not %d", o.Count))
	}
	if o.Count == 0 && o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration must be positive, not %s", o.Duration))
	}
	return errors.Join(errs...)
}

// OrderReader reads one order by id; the read benchmark drives it.
type OrderReader interface {
	ReadOrder(ctx context.Context, id string) error
}

// Read runs the read benchmark: opts.Clients clients each read a random one of ids in a loop.
// Reads that fail are counted in Errors, and the first failure is returned with the result.
func Read(ctx context.Context, reader OrderReader, ids []string, opts ReadOptions) (ReadResult, error) {
	if err := opts.Validate(); err != nil {
		return ReadResult{}, err
	}
	if len(ids) == 0 {
		return ReadResult{}, errors.New("bench: no orders to read")
	}
	var reads atomic.Int64
	d := &drive{workers: opts.Clients, count: opts.Count, duration: opts.Duration, seed: uint64(time.Now().UnixNano())} //nolint:gosec // a time, positive
	d.op = func(ctx context.Context, _, _ int, rng *rand.Rand) error {
		err := reader.ReadOrder(ctx, ids[rng.IntN(len(ids))])
		if err == nil {
			reads.Add(1)
		}
		return err
	}
	d.progress = func(start time.Time) func() {
		return everySecond(ctx, opts.Progress, func(now time.Time) string {
			n, secs := reads.Load(), now.Sub(start).Seconds()
			if opts.Count > 0 {
				return fmt.Sprintf("bench: %4.0fs: %d of %d reads (%.0f/s), %d errors\n", secs, n, opts.Count, float64(n)/secs, d.failures.Load())
			}
			return fmt.Sprintf("bench: %4.0fs of %s: %d reads (%.0f/s), %d errors\n", secs, opts.Duration, n, float64(n)/secs, d.failures.Load())
		})
	}
	m := d.run(ctx)
	elapsed := m.elapsed

	res := ReadResult{
		Clients: opts.Clients, Seconds: round(elapsed, 2), Reads: reads.Load(), Errors: d.failures.Load(),
		P50Ms: quantileMs(m.latencies, 0.50), P99Ms: quantileMs(m.latencies, 0.99), MaxMs: quantileMs(m.latencies, 1),
	}
	res.ReadsPerSec = round(float64(res.Reads)/elapsed, 0)
	if m.firstErr != nil {
		return res, fmt.Errorf("bench: %d reads failed, the first with: %w", res.Errors, m.firstErr)
	}
	return res, ctx.Err()
}

// GraphQLOrders is a client of the server's GraphQL API for the read benchmark: it creates orders
// the way a client would (registerUser, createOrder) and reads them back with order(id).
type GraphQLOrders struct {
	URL    string // the server's base, http://host:port
	Client *http.Client
}

const (
	registerUserMutation = `mutation($name: String!, $email: String!) { registerUser(name: $name, email: $email) { user { id } position } }`
	createOrderMutation  = `mutation($c: ID!, $items: [OrderItemInput!]!) { createOrder(customerId: $c, items: $items) { order { id } position } }`
	orderQuery           = `query($id: ID!) { order(id: $id) { id status version } }`
	orderConsistentQuery = `query($id: ID!, $p: String) { order(id: $id, consistentWith: $p) { id status version } }`
)

// do posts query with vars and decodes the answer's data into data; an answer with errors is
// an error naming the first one's code and message.
func (g GraphQLOrders) do(ctx context.Context, query string, vars map[string]any, data any) error {
	a, status, raw, err := postGraphQL(ctx, g.Client, g.URL, query, vars)
	if err != nil {
		return err
	}
	if len(a.Errors) > 0 {
		return &GraphQLError{Code: a.Errors[0].Extensions.Code, Message: a.Errors[0].Message}
	}
	if status != http.StatusOK || len(a.Data) == 0 || string(a.Data) == "null" {
		return fmt.Errorf("HTTP %d: no data: %.200s", status, raw)
	}
	return json.Unmarshal(a.Data, data)
}

// GraphQLError is the first error of a GraphQL answer.
type GraphQLError struct{ Code, Message string }

func (e *GraphQLError) Error() string { return e.Code + ": " + e.Message }

// orderAnswer is what order(id) answers.
type orderAnswer struct {
	Order *struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Version int64  `json:"version"`
	} `json:"order"`
}

// ReadOrder reads the order id; an answer with errors, without the order or with another id is
// an error.
func (g GraphQLOrders) ReadOrder(ctx context.Context, id string) error {
	var a orderAnswer
	if err := g.do(ctx, orderQuery, map[string]any{"id": id}, &a); err != nil {
		return err
	}
	switch {
	case a.Order == nil:
		return fmt.Errorf("order %s: not found", id)
	case a.Order.ID != id:
		return fmt.Errorf("order %s: the answer is order %s", id, a.Order.ID)
	}
	return nil
}

// CreateOrders registers one customer and creates n orders for it, concurrency at a time, each of
// one item, writing a progress line a second to progress (when not nil). It returns the orders'
// ids and the latest position the mutations returned: once the read model is consistent with
// it, every order is readable (WaitForOrders).
func (g GraphQLOrders) CreateOrders(ctx context.Context, n, concurrency int, progress io.Writer) (ids []string, last string, err error) {
	var user struct {
		RegisterUser struct {
			User     struct{ ID string } `json:"user"`
			Position string              `json:"position"`
		} `json:"registerUser"`
	}
	email := fmt.Sprintf("bench-read-%x@example.com", time.Now().UnixNano())
	if err := g.do(ctx, registerUserMutation, map[string]any{"name": "Bench Reader", "email": email}, &user); err != nil {
		return nil, "", fmt.Errorf("registerUser: %w", err)
	}
	customer := user.RegisterUser.User.ID
	items := []map[string]any{{"sku": "BENCH-1", "quantity": 2, "unitPrice": "9.99"}}

	ids = make([]string, n)
	positions := make([]string, n)
	var (
		next, done atomic.Int64
		firstErr   error
		errOnce    sync.Once
		wg         sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for range max(1, min(concurrency, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				var r struct {
					CreateOrder struct {
						Order    struct{ ID string } `json:"order"`
						Position string              `json:"position"`
					} `json:"createOrder"`
				}
				if err := g.do(ctx, createOrderMutation, map[string]any{"c": customer, "items": items}, &r); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("createOrder: %w", err) })
					cancel()
					return
				}
				ids[i], positions[i] = r.CreateOrder.Order.ID, r.CreateOrder.Position
				done.Add(1)
			}
		}()
	}
	stopProgress := everySecond(ctx, progress, func(now time.Time) string {
		return fmt.Sprintf("bench: %4.0fs: %d of %d orders created\n", now.Sub(start).Seconds(), done.Load(), n)
	})
	wg.Wait()
	stopProgress()
	if firstErr != nil {
		return nil, "", firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	// Positions are strings that sort as the positions they stand for.
	last = user.RegisterUser.Position
	for _, p := range positions {
		last = max(last, p)
	}
	return ids, last, nil
}

// WaitForOrders waits until the orders read model is consistent with position and the order id
// is readable, asking order(id, consistentWith) again while the server answers
// CONSISTENCY_TIMEOUT or not yet the order, until timeout.
func (g GraphQLOrders) WaitForOrders(ctx context.Context, id, position string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var a orderAnswer
		err := g.do(ctx, orderConsistentQuery, map[string]any{"id": id, "p": position}, &a)
		var ge *GraphQLError
		switch {
		case err == nil && a.Order != nil && a.Order.ID == id:
			return nil
		case err == nil:
			err = fmt.Errorf("order %s not readable", id)
		case !errors.As(err, &ge) || ge.Code != "CONSISTENCY_TIMEOUT":
			return fmt.Errorf("wait for the orders: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for the orders: still after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
