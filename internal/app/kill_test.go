package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// The server process is killed (SIGKILL, no chance to clean up) while its projectors are in
// the middle of the log, three times; the fourth run finishes. Every read-model row then matches
// its stream: nothing lost, nothing applied twice.
func TestServerKilledMidProjectionLosesAndDoublesNothing(t *testing.T) {
	bin := buildStrata(t)
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 10)
	store := eventstore.New(pool, eventstore.Options{})
	ctx := context.Background()

	// A backlog written straight to the store, so the server starts far behind.
	const n = 2000
	for i := range n {
		uid, oid := uuid.NewString(), uuid.NewString()
		reg, _ := json.Marshal(user.Registered{UserID: uid, Name: "U", Email: fmt.Sprintf("u%d@example.com", i)})
		if _, err := store.Append(ctx, user.StreamID(uid), eventstore.NoStream(), []eventstore.EventData{{Type: user.TypeRegistered, Data: reg}}); err != nil {
			t.Fatal(err)
		}
		created, _ := json.Marshal(order.Created{OrderID: oid, CustomerID: uid, Items: []order.Item{{SKU: "A", Quantity: 1, UnitPrice: 100}}, Total: 100})
		paid, _ := json.Marshal(order.PaidEvent{Amount: 100})
		if _, err := store.Append(ctx, order.StreamID(oid), eventstore.NoStream(), []eventstore.EventData{{Type: order.TypeCreated, Data: created}, {Type: order.TypePaid, Data: paid}}); err != nil {
			t.Fatal(err)
		}
	}

	checkpoints := func() (users, orders string) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT position FROM projection_checkpoints WHERE name = 'users'), (SELECT position FROM projection_checkpoints WHERE name = 'orders')`).Scan(&users, &orders); err != nil {
			t.Fatal(err)
		}
		return users, orders
	}
	lag := func(at, category string) int64 {
		t.Helper()
		p, err := eventstore.ParsePosition(at)
		if err != nil {
			t.Fatal(err)
		}
		n, err := store.CountAfter(ctx, p, category, 1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// done says when to kill: after the server committed a batch (kill), or once it has
	// applied everything (the last run).
	done := func(kill bool, startUsers, startOrders string) bool {
		u, o := checkpoints()
		if kill {
			return u != startUsers || o != startOrders
		}
		return lag(u, "user") == 0 && lag(o, "order") == 0
	}
	run := func(kill bool) {
		t.Helper()
		cmd := exec.Command(bin, "serve", "--addr", freeAddr(t), "--log-level", "warn")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		startUsers, startOrders := checkpoints()
		deadline := time.Now().Add(60 * time.Second)
		for !done(kill, startUsers, startOrders) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("the server did not get there within 60s; stderr:\n%s", stderr.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	for range 3 {
		run(true)
	}
	if u, o := checkpoints(); lag(u, "user") == 0 && lag(o, "order") == 0 {
		t.Fatalf("the users projection had caught up before the third kill; the test proves nothing")
	}
	run(false)

	var users, orders, wrong int
	err := pool.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM users),
	(SELECT count(*) FROM orders),
	(SELECT count(*) FROM users u JOIN streams s ON s.stream_id = 'user-' || u.id WHERE u.version <> s.version OR u.status <> 'ACTIVE')
	+ (SELECT count(*) FROM orders o JOIN streams s ON s.stream_id = 'order-' || o.id WHERE o.version <> s.version OR o.status <> 'PAID')`).Scan(&users, &orders, &wrong)
	if err != nil {
		t.Fatal(err)
	}
	if users != n || orders != n || wrong != 0 {
		t.Errorf("after kills and a restart: %d users, %d orders, %d rows unlike their stream; want %d, %d, 0", users, orders, wrong, n, n)
	}
}
