package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/platform/serveproc"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// leaderships are what one replica at a time runs, as /metrics labels them: the seed's
// projectors and the scavenger.
var leaderships = []string{"projection:orders", "projection:users", "scavenger"} //nolint:gochecknoglobals // a constant list

// leadersOf scrapes the metrics of each server and returns, for each leadership, the
// indexes of the servers that report leading it.
func leadersOf(t *testing.T, srvs []*serveproc.Server) map[string][]int {
	t.Helper()
	out, missing := scrapeLeaders(t, srvs)
	if missing != "" {
		t.Fatal(missing)
	}
	return out
}

// scrapeLeaders is leadersOf, saying which server does not show a leadership's gauge yet
// ("" when all do): a server just started registers each when its part starts.
func scrapeLeaders(t *testing.T, srvs []*serveproc.Server) (map[string][]int, string) {
	t.Helper()
	out := map[string][]int{}
	missing := ""
	for i, s := range srvs {
		if s == nil {
			continue
		}
		m := metricstest.Scrape(t, "http://"+s.Addr+"/metrics")
		for _, name := range leaderships {
			v, ok := m[`strata_leader{name="`+name+`"}`]
			if !ok {
				missing = fmt.Sprintf("server %d: /metrics has no strata_leader for %s", i, name)
				continue
			}
			if v == 1 {
				out[name] = append(out[name], i)
			}
		}
	}
	return out, missing
}

// waitOneLeaderEach waits until each leadership has exactly one leader among srvs (nil entries
// are servers that are gone) and returns them.
func waitOneLeaderEach(t *testing.T, srvs []*serveproc.Server, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		leaders, missing := scrapeLeaders(t, srvs)
		one := map[string]int{}
		for _, name := range leaderships {
			if len(leaders[name]) == 1 {
				one[name] = leaders[name][0]
			}
		}
		if len(one) == len(leaderships) && missing == "" {
			return one
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single leader per leadership within %s: %v %s", within, leaders, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three servers share one database while writers append through all three; the one leading the
// orders projection is killed (SIGKILL) under that load. Another takes the projection over (and
// one replica, never two, runs each projector and the scavenger before and after), the
// writers on the survivors carry on, and in the end the read models hold exactly what a replay
// of the log gives: every row's applied count equals its stream's events (an event applied
// twice would count twice), and no projection skipped anything.
func TestThreeReplicasOneProjectorLeader(t *testing.T) {
	seed := crashSeed(t) // first, so that the log has it whatever fails
	bin := buildStrata(t)
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 4)
	verifyNoLeaks(t)
	ctx := t.Context()
	client, env, serverLog := childHarness(t)
	cfg := config.Config{DBMaxConns: 10, LogLevel: slog.LevelInfo, LogFormat: "text"}
	srvs := make([]*serveproc.Server, 3)
	for i := range srvs {
		srv, err := serveproc.Start(ctx, env.Stderr, cfg, bin, url)
		if err != nil {
			t.Fatalf("server %d: %v; log:\n%s", i, err, serverLog)
		}
		t.Cleanup(srv.Stop)
		srvs[i] = srv
	}
	before := waitOneLeaderEach(t, srvs, 30*time.Second)
	t.Logf("leaders before the kill: %v", before)

	// Two writers per server; each stops at its first request without an answer (its server
	// died) or when its context ends.
	var (
		answered atomic.Int64
		ws       []*crashWriter
		wg       sync.WaitGroup
	)
	writeCtx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	for n := range 6 {
		w := &crashWriter{n: n, addr: srvs[n%3].Addr, client: client, rng: rand.New(rand.NewPCG(seed, uint64(n))), shared: map[string]int64{}}
		ws = append(ws, w)
		wg.Go(func() { w.run(writeCtx, t, &answered) })
	}
	waitAnswered := func(n int64, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for answered.Load() < n {
			if time.Now().After(deadline) {
				stopWriters()
				wg.Wait()
				t.Fatalf("%s: only %d requests answered within 60s; log:\n%s", what, answered.Load(), serverLog)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAnswered(300, "before the kill")

	victim := before["projection:orders"]
	_ = srvs[victim].Cmd.Process.Signal(syscall.SIGKILL)
	<-srvs[victim].Done()
	srvs[victim] = nil
	killedAt, answeredAtKill := time.Now(), answered.Load()
	after := waitOneLeaderEach(t, srvs, 30*time.Second)
	t.Logf("server %d killed; leaders %v after %s", victim, after, time.Since(killedAt).Round(time.Millisecond))

	// The survivors keep serving writes, and the new leader applies them.
	waitAnswered(answeredAtKill+300, "after the kill")
	stopWriters()
	wg.Wait()
	var survivor *serveproc.Server
	for _, s := range srvs {
		if s != nil {
			survivor = s
		}
	}

	var (
		appends  []*crashAppend
		commands []*crashCommand
	)
	for _, w := range ws {
		appends = append(appends, w.appends...)
		commands = append(commands, w.commands...)
	}
	checkLog(ctx, t, pool, appends, commands)
	waitProjectionsLive(ctx, t, pool, client, survivor.Addr)
	checkAppliedOnce(ctx, t, pool)

	live := readModels(ctx, t, pool)
	if want := []string{"orders 0", "users 0"}; !slices.Equal(live["skipped"], want) {
		t.Errorf("checkpoints skipped %v, want %v", live["skipped"], want)
	}
	// A rebuild replays every stream from its first event into a fresh table: each row must be
	// what the live projectors, across the takeover, made of it.
	rebuildWithCLI(ctx, t, bin, []string{"DATABASE_URL=" + url}, "users", "orders")
	rebuilt := readModels(ctx, t, pool)
	for _, name := range []string{"users", "orders"} {
		if !slices.Equal(live[name], rebuilt[name]) {
			t.Errorf("%s: the live read model (%d rows) differs from its replay (%d rows)", name, len(live[name]), len(rebuilt[name]))
			for i := range max(len(live[name]), len(rebuilt[name])) {
				if rowOr(live[name], i) != rowOr(rebuilt[name], i) {
					t.Errorf("%s: first difference at row %d:\nlive:    %s\nreplay:  %s", name, i, rowOr(live[name], i), rowOr(rebuilt[name], i))
					break
				}
			}
		}
	}
	if !strings.Contains(serverLog.String(), "leadership acquired") {
		t.Errorf("no server logged that it acquired a leadership")
	}
	for _, s := range srvs {
		if s != nil {
			s.Stop()
			if s.Err() != nil {
				t.Errorf("a surviving server, stopped with SIGTERM: %v", s.Err())
			}
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", serverLog)
	}
}

// checkAppliedOnce checks every users and orders row against its stream: it is at the stream's
// last version, and it has applied as many events as the stream holds, no more (a double apply)
// and no fewer.
func checkAppliedOnce(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for _, table := range []string{"users", "orders"} {
		category := strings.TrimSuffix(table, "s")
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT r.id::text, r.version, r.applied, s.events, s.last
FROM %s r LEFT JOIN (SELECT stream_id, count(*) AS events, max(version) AS last FROM events GROUP BY stream_id) s
	ON s.stream_id = '%s-' || r.id::text
WHERE s.events IS DISTINCT FROM r.applied OR s.last IS DISTINCT FROM r.version`, pgx.Identifier{table}.Sanitize(), category))
		if err != nil {
			t.Fatal(err)
		}
		type mismatch struct {
			ID               string
			Version, Applied int64
			Events, Last     *int64
		}
		bad, err := pgx.CollectRows(rows, pgx.RowToStructByPos[mismatch])
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range bad {
			if i == 5 {
				t.Errorf("%s: %d rows in all disagree with their streams", table, len(bad))
				break
			}
			t.Errorf("%s row %s: version %d, %d events applied; its stream: %v events, last version %v", table, m.ID, m.Version, m.Applied, deref(m.Events), deref(m.Last))
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("%s: no rows; the test proves little", table)
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}
