package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/platform/serveproc"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// Two servers whose pools go through PgBouncer in transaction pooling mode (Debian's 1.18: no
// prepared statements across transactions), with LISTEN_DATABASE_URL direct: mutations, reads
// with consistentWith, a live subscription woken by the other server's append (LISTEN works),
// concurrent appends through group commit, a rebuild, and projections that converge. Without
// LISTEN_DATABASE_URL the server refuses to start and says why.
func TestBehindPgBouncer(t *testing.T) {
	bin := buildStrata(t)
	direct := dbtest.URL(t)
	pooled := dbtest.PgBouncer(t, direct) + "&default_query_exec_mode=exec"
	pool := dbtest.PoolFor(t, direct, 4)
	verifyNoLeaks(t)
	ctx := t.Context()
	client, env, serverLog := childHarness(t)
	cfg := config.Config{DBMaxConns: 10, LogLevel: slog.LevelInfo, LogFormat: "text"}
	var srvs []*serveproc.Server
	for i := range 2 {
		srv, err := serveproc.Start(ctx, env.Stderr, cfg, bin, pooled, "--listen-database-url", direct)
		if err != nil {
			t.Fatalf("server %d: %v; log:\n%s", i, err, serverLog)
		}
		t.Cleanup(srv.Stop)
		srvs = append(srvs, srv)
	}
	a, b := srvs[0].Addr, srvs[1].Addr
	post := func(addr, query string, vars map[string]any) map[string]json.RawMessage {
		t.Helper()
		r, err := crashPost(ctx, client, addr, query, vars)
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("%s: %v %+v; log:\n%s", query, err, r.Errors, serverLog)
		}
		return r.Data
	}

	// A mutation on one server, read back with consistentWith on the other.
	var reg struct {
		User     struct{ ID string }
		Position string
	}
	mustUnmarshal(t, post(a, `mutation { registerUser(name: "Ada", email: "ada@pgbouncer.example.com") { user { id } position } }`, nil)["registerUser"], &reg)
	var got struct{ Name, Email string }
	mustUnmarshal(t, post(b, `query($id: ID!, $p: String) { user(id: $id, consistentWith: $p) { name email } }`,
		map[string]any{"id": reg.User.ID, "p": reg.Position})["user"], &got)
	if got.Name != "Ada" {
		t.Errorf("user read with consistentWith on the other server = %+v, want Ada", got)
	}
	var created struct {
		Order    struct{ ID string }
		Position string
	}
	mustUnmarshal(t, post(b, `mutation($c: ID!, $items: [OrderItemInput!]!) { createOrder(customerId: $c, items: $items) { order { id } position } }`,
		map[string]any{"c": reg.User.ID, "items": items("SKU-1", 2, "3.50")})["createOrder"], &created)
	var ord struct{ Total string }
	mustUnmarshal(t, post(a, `query($id: ID!, $p: String) { order(id: $id, consistentWith: $p) { total } }`,
		map[string]any{"id": created.Order.ID, "p": created.Position})["order"], &ord)
	if ord.Total != "7.00" {
		t.Errorf("order total read with consistentWith = %q, want 7.00", ord.Total)
	}

	// A subscription on b sees an event appended through a: b's listener, on the direct URL,
	// is told of it.
	ws, err := wsclient.Dial(ctx, "ws://"+b+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ws.Close() }()
	if err := ws.Subscribe("1", `subscription { events(category: "pgb") { streamId type } }`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the subscription to start", func() bool {
		return metricstest.Scrape(t, "http://"+b+"/metrics")["strata_subscriptions_active"] == 1
	})
	notifiedBefore := metricstest.Scrape(t, "http://"+b+"/metrics")["strata_listen_notifications_total"]
	post(a, `mutation { appendEvents(streamId: "pgb-1", events: [{type: "Pooled", data: {}}]) { position } }`, nil)
	r, err := ws.Next(20 * time.Second)
	if err != nil || len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"pgb-1"`) {
		t.Fatalf("subscription on the other server: %s %s %v", r.Data, r.Errors, err)
	}
	waitFor(t, "b's listener to be notified of a's append", func() bool {
		return metricstest.Scrape(t, "http://"+b+"/metrics")["strata_listen_notifications_total"] > notifiedBefore
	})

	// Concurrent appends go through group commit's pipelined transactions, through the pooler.
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				addr := srvs[(w+i)%2].Addr
				r, err := crashPost(ctx, client, addr, `mutation($s: String!) { appendEvents(streamId: $s, events: [{type: "Pooled", data: {}}], expectedVersion: null) { position } }`,
					map[string]any{"s": fmt.Sprintf("pgb-w%d", w)})
				if err != nil || len(r.Errors) > 0 {
					t.Errorf("writer %d: %v %+v", w, err, r.Errors)
					return
				}
			}
		})
	}
	// Domain commands meanwhile, through both servers.
	for i := range 10 {
		post(srvs[i%2].Addr, `mutation($n: String!, $e: String!) { registerUser(name: $n, email: $e) { user { id } } }`,
			map[string]any{"n": fmt.Sprintf("User %d", i), "e": fmt.Sprintf("u%d@pgbouncer.example.com", i)})
	}
	wg.Wait()
	var batches, grouped float64
	for _, s := range srvs {
		m := metricstest.Scrape(t, "http://"+s.Addr+"/metrics")
		batches += m["strata_group_commits_total"]
		grouped += m["strata_group_commit_appends_total"]
	}
	if batches == 0 || grouped < writers*each {
		t.Errorf("group commit wrote %v transactions carrying %v appends; want every one of %d appends", batches, grouped, writers*each)
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id LIKE 'pgb-w%'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != writers*each {
		t.Errorf("%d events stored by the writers, want %d", stored, writers*each)
	}

	// A rebuild takes its lock on the direct URL and runs its work through the pooler.
	rebuildWithCLI(ctx, t, bin, []string{"DATABASE_URL=" + pooled, "LISTEN_DATABASE_URL=" + direct}, "users")

	waitProjectionsLive(ctx, t, pool, client, a)
	checkAppliedOnce(ctx, t, pool)
	if leaders := leadersOf(t, srvs); len(leaders["projection:users"]) != 1 || len(leaders["projection:orders"]) != 1 {
		t.Errorf("leaders %v, want one per projection", leaders)
	}

	// Without LISTEN_DATABASE_URL, LISTEN would go through the pooler and hear nothing: the
	// server says so and does not start.
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(startCtx, bin, "serve", "--addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pooled, "LISTEN_DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	if err == nil || startCtx.Err() != nil {
		t.Fatalf("strata serve with the pooler for LISTEN: %v, want it to refuse to start; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "LISTEN_DATABASE_URL") || !strings.Contains(string(out), "does not keep a session of its own") {
		t.Errorf("strata serve with the pooler for LISTEN says:\n%s\nwant it to name the cause and LISTEN_DATABASE_URL", out)
	}

	for _, s := range srvs {
		s.Stop()
		if s.Err() != nil {
			t.Errorf("server stopped with SIGTERM: %v", s.Err())
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", serverLog)
	}
}

func mustUnmarshal(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}
