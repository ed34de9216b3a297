package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/platform/serveproc"
	runtimecommand "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/transport/cli"
)

// outcome is what a client learned about one request it sent.
type outcome int

const (
	// unknownOutcome: the server died before it answered; the request may or may not have
	// been carried out, but never in part.
	unknownOutcome outcome = iota
	// acked: a success response; what it reports must be stored, once.
	acked
	// refused: WRONG_EXPECTED_VERSION; nothing may be stored.
	refused
)

// crashAppend is one appendEvents request and what came of it.
type crashAppend struct {
	stream   string
	expected *int64 // nil: any version
	events   []map[string]any
	ids      []string
	outcome  outcome
	// Once acked: the version and position the server reported for each event.
	versions  []int64
	positions []string
}

// request is the GraphQL request of a, the same each time it is sent: a retry repeats it.
func (a *crashAppend) request() (string, map[string]any) {
	vars := map[string]any{"s": a.stream, "e": a.events}
	if a.expected != nil {
		vars["v"] = *a.expected
	}
	return `mutation($s: String!, $e: [EventInput!]!, $v: Int) { appendEvents(streamId: $s, events: $e, expectedVersion: $v) {
	repeated events { id version position } } }`, vars
}

// record reads the answer to a. It returns an error when the answer is neither a success nor
// a version conflict.
func (a *crashAppend) record(r gqlResponse) (repeated bool, err error) {
	if r.code() == "WRONG_EXPECTED_VERSION" {
		a.outcome = refused
		return false, nil
	}
	if len(r.Errors) > 0 {
		return false, fmt.Errorf("appendEvents to %s: %+v", a.stream, r.Errors)
	}
	var res struct {
		Repeated bool
		Events   []struct {
			ID       string
			Version  int64
			Position string
		}
	}
	if err := json.Unmarshal(r.Data["appendEvents"], &res); err != nil {
		return false, fmt.Errorf("appendEvents to %s: %s: %w", a.stream, r.Data["appendEvents"], err)
	}
	if len(res.Events) != len(a.ids) {
		return false, fmt.Errorf("appendEvents to %s: %d events in the answer, %d sent", a.stream, len(res.Events), len(a.ids))
	}
	a.outcome, a.versions, a.positions = acked, nil, nil
	for i, e := range res.Events {
		if e.ID != a.ids[i] {
			return false, fmt.Errorf("appendEvents to %s: event %d is %s in the answer, %s sent", a.stream, i, e.ID, a.ids[i])
		}
		a.versions = append(a.versions, e.Version)
		a.positions = append(a.positions, e.Position)
	}
	return res.Repeated, nil
}

// crashCommand is one domain mutation and, once acked, the events it reported.
type crashCommand struct {
	mutation string
	outcome  outcome
	events   []commandEvent
}

type commandEvent struct {
	StreamID string
	Version  int64
	Type     string
}

const (
	crashRegisterM = `mutation($n: String!, $e: String!) { registerUser(name: $n, email: $e) { user { id } events { streamId version type } } }`
	crashCreateM   = `mutation($c: ID!, $items: [OrderItemInput!]!) { createOrder(customerId: $c, items: $items) { order { id total } events { streamId version type } } }`
	crashPayM      = `mutation($id: ID!, $a: Money!) { payOrder(id: $id, amount: $a) { order { id } events { streamId version type } } }`
	crashShipM     = `mutation($id: ID!) { shipOrder(id: $id, carrier: "DHL", trackingNumber: "JD0001") { order { id } events { streamId version type } } }`
)

// crashSeedEnv names the environment variable that sets the seed of the crash tests' random
// writers, a decimal uint64. Each test logs the seed it uses at its start, so that a failed run
// can be run again with the same choices of requests (STRATA_CRASH_SEED=<seed> go test -run
// <test> ./internal/app/); the moment of the kill and how the writers interleave still vary.
// Unset, each run takes a fresh seed from the clock.
const crashSeedEnv = "STRATA_CRASH_SEED"

// crashSeed returns the seed of the test's random writers, from crashSeedEnv or else the clock,
// and logs it.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: want a decimal uint64: %v", crashSeedEnv, s, err)
		}
	}
	t.Logf("writers seeded with %s=%d", crashSeedEnv, seed)
	return seed
}

// crashWriter is one client of the crash test, with what it has written and learned.
type crashWriter struct {
	n      int
	addr   string
	client *http.Client
	rng    *rand.Rand

	own    int64            // the version of its own stream
	shared map[string]int64 // the last version it saw of each shared stream
	users  []string
	unpaid []struct{ id, total string }
	paid   []string

	appends  []*crashAppend
	commands []*crashCommand
}

// run sends requests until one gets no answer: the server is gone.
func (w *crashWriter) run(ctx context.Context, t *testing.T, answered *atomic.Int64) {
	for i := 0; ; i++ {
		var err error
		switch r := w.rng.IntN(8); {
		case r < 4:
			err = w.appendOwn(ctx, t, i)
		case r < 6:
			err = w.appendShared(ctx, t, i)
		default:
			err = w.command(ctx, t, i)
		}
		if err != nil {
			return
		}
		answered.Add(1)
	}
}

// newAppend makes an append of 1 to 5 events with ids of the client's choosing.
func (w *crashWriter) newAppend(stream string, expected *int64, i int) *crashAppend {
	a := &crashAppend{stream: stream, expected: expected}
	for k := range 1 + w.rng.IntN(5) {
		id := uuid.NewString()
		a.ids = append(a.ids, id)
		a.events = append(a.events, map[string]any{"id": id, "type": "CrashTested", "data": map[string]any{"writer": w.n, "request": i, "event": k}})
	}
	w.appends = append(w.appends, a)
	return a
}

// appendOwn appends to the writer's own stream, at the version it knows or at any version.
func (w *crashWriter) appendOwn(ctx context.Context, t *testing.T, i int) error {
	var expected *int64
	if w.rng.IntN(2) == 0 {
		v := w.own
		expected = &v
	}
	a := w.newAppend(fmt.Sprintf("crash-writer%d", w.n), expected, i)
	q, vars := a.request()
	r, err := crashPost(ctx, w.client, w.addr, q, vars)
	if err != nil {
		return err
	}
	if _, err := a.record(r); err != nil || a.outcome != acked {
		t.Errorf("writer %d: the only writer of its stream got %v, %+v", w.n, err, r.Errors)
		return nil
	}
	w.own = a.versions[len(a.versions)-1]
	return nil
}

// appendShared appends to a shared stream, at any version or at the last version this writer
// saw, which others may have moved on from.
func (w *crashWriter) appendShared(ctx context.Context, t *testing.T, i int) error {
	// Few, so that appends with an exact expected version meet conflicts.
	stream := fmt.Sprintf("crash-shared%d", w.rng.IntN(3))
	var expected *int64
	if w.rng.IntN(2) == 0 {
		v := w.shared[stream]
		expected = &v
	}
	a := w.newAppend(stream, expected, i)
	q, vars := a.request()
	r, err := crashPost(ctx, w.client, w.addr, q, vars)
	if err != nil {
		return err
	}
	if _, err := a.record(r); err != nil {
		t.Errorf("writer %d: %v", w.n, err)
		return nil
	}
	switch a.outcome {
	case acked:
		w.shared[stream] = a.versions[len(a.versions)-1]
	case refused:
		actual, _ := r.Errors[0].Extensions["actualVersion"].(float64)
		w.shared[stream] = int64(actual)
	}
	return nil
}

// command runs a domain mutation: registers a user, or creates, pays or ships an order.
func (w *crashWriter) command(ctx context.Context, t *testing.T, i int) error {
	var (
		c    = &crashCommand{}
		vars map[string]any
		q    string
	)
	switch {
	case len(w.users) == 0 || w.rng.IntN(4) == 0:
		c.mutation, q = "registerUser", crashRegisterM
		vars = map[string]any{"n": fmt.Sprintf("Writer %d", w.n), "e": fmt.Sprintf("w%d-%d@crash.example.com", w.n, i)}
	case len(w.unpaid) > 0 && w.rng.IntN(2) == 0:
		c.mutation, q = "payOrder", crashPayM
		vars = map[string]any{"id": w.unpaid[0].id, "a": w.unpaid[0].total}
	case len(w.paid) > 0 && w.rng.IntN(2) == 0:
		c.mutation, q = "shipOrder", crashShipM
		vars = map[string]any{"id": w.paid[0]}
	default:
		c.mutation, q = "createOrder", crashCreateM
		vars = map[string]any{"c": w.users[w.rng.IntN(len(w.users))], "items": items(fmt.Sprintf("SKU-%d", i), 1+w.rng.IntN(3), "2.50")}
	}
	w.commands = append(w.commands, c)
	r, err := crashPost(ctx, w.client, w.addr, q, vars)
	if err != nil {
		return err
	}
	var res struct {
		User   struct{ ID string }
		Order  struct{ ID, Total string }
		Events []commandEvent
	}
	if len(r.Errors) > 0 {
		t.Errorf("writer %d: %s %v: %+v", w.n, c.mutation, vars, r.Errors)
		return nil
	}
	if err := json.Unmarshal(r.Data[c.mutation], &res); err != nil || len(res.Events) == 0 {
		t.Errorf("writer %d: %s answered %s (%v)", w.n, c.mutation, r.Data[c.mutation], err)
		return nil
	}
	c.outcome, c.events = acked, res.Events
	switch c.mutation {
	case "registerUser":
		w.users = append(w.users, res.User.ID)
	case "createOrder":
		w.unpaid = append(w.unpaid, struct{ id, total string }{res.Order.ID, res.Order.Total})
	case "payOrder":
		w.paid, w.unpaid = append(w.paid, w.unpaid[0].id), w.unpaid[1:]
	case "shipOrder":
		w.paid = w.paid[1:]
	}
	return nil
}

// crashPost sends a GraphQL request. An error means there was no complete answer, so the
// request's outcome is unknown: the connection was refused or broken, or the body cut short.
func crashPost(ctx context.Context, client *http.Client, addr, query string, vars map[string]any) (gqlResponse, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return gqlResponse{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/query", bytes.NewReader(body))
	if err != nil {
		return gqlResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return gqlResponse{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return gqlResponse{}, err
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return gqlResponse{}, fmt.Errorf("status %d, body %q: %w", resp.StatusCode, raw, err)
	}
	return r, nil
}

// storedEvent is a row of the events table; position is in Position.String's form.
type storedEvent struct {
	id, stream, typ, tx, position string
	version                       int64
	tags                          []string
}

// checkLog checks the events table against what the writers were told, and the log's own
// rules. It returns the stored events by id.
func checkLog(ctx context.Context, t *testing.T, pool *pgxpool.Pool, appends []*crashAppend, commands []*crashCommand) map[string][]storedEvent {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Sorted by the xid8 itself: ORDER BY a bare name would take the output column, whose
	// text sorts "1000" before "999".
	rows, err := pool.Query(ctx, `SELECT e.event_id::text, e.stream_id, e.type, e.transaction_id::text AS tx, e.position, e.version, e.tags
FROM events e ORDER BY e.transaction_id, e.position`)
	if err != nil {
		t.Fatal(err)
	}
	log, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedEvent, error) {
		var (
			e   storedEvent
			seq int64
		)
		if err := r.Scan(&e.id, &e.stream, &e.typ, &e.tx, &seq, &e.version, &e.tags); err != nil {
			return e, err
		}
		tx, err := strconv.ParseUint(e.tx, 10, 64)
		e.position = fmt.Sprintf("%016x%016x", tx, seq)
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string][]storedEvent{}
	byTx := map[string][]storedEvent{}
	type streamVersion struct {
		stream  string
		version int64
	}
	at := map[streamVersion]storedEvent{}
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, e := range log {
		byID[e.id] = append(byID[e.id], e)
		byTx[e.tx] = append(byTx[e.tx], e)
		at[streamVersion{e.stream, e.version}] = e
		if seen[e.position] {
			report("position %s is held by more than one event", e.position)
		}
		seen[e.position] = true
		// In the global order each stream's versions go 1, 2, 3...: no gap, no repeat, no
		// event read before one it follows.
		if e.version != last[e.stream]+1 {
			report("stream %s: version %d follows version %d in the global order", e.stream, e.version, last[e.stream])
		}
		last[e.stream] = e.version
	}
	for id, es := range byID {
		if len(es) > 1 {
			report("event %s is stored %d times", id, len(es))
		}
	}
	streams, err := pool.Query(ctx, `SELECT stream_id, version FROM streams`)
	if err != nil {
		t.Fatal(err)
	}
	var stream string
	var version int64
	rowsSeen := 0
	_, err = pgx.ForEachRow(streams, []any{&stream, &version}, func() error {
		rowsSeen++
		if last[stream] != version {
			report("stream %s is at version %d in streams, its last event is version %d", stream, version, last[stream])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rowsSeen != len(last) {
		report("%d rows in streams, %d streams with events", rowsSeen, len(last))
	}

	for _, a := range appends {
		var found []storedEvent
		for _, id := range a.ids {
			found = append(found, byID[id]...)
		}
		switch {
		case a.outcome == refused && len(found) > 0:
			report("append to %s was refused, yet %d of its %d events are stored", a.stream, len(found), len(a.ids))
		case a.outcome == acked && len(found) != len(a.ids):
			report("append to %s was acknowledged, and %d of its %d events are stored", a.stream, len(found), len(a.ids))
		case a.outcome == unknownOutcome && len(found) != 0 && len(found) != len(a.ids):
			report("append to %s is half-written: %d of its %d events are stored", a.stream, len(found), len(a.ids))
		case len(found) == len(a.ids):
			// Whole: in its stream, consecutive, from one transaction, where the expected
			// version and the answer put it.
			for i, e := range found {
				if e.stream != a.stream || e.version != found[0].version+int64(i) || e.tx != found[0].tx {
					report("append to %s: event %s stored as version %d of %s in transaction %s; its first is version %d in transaction %s",
						a.stream, e.id, e.version, e.stream, e.tx, found[0].version, found[0].tx)
				}
				if a.outcome == acked && (e.version != a.versions[i] || e.position != a.positions[i]) {
					report("append to %s: event %s stored at version %d, position %s; the answer said %d, %s", a.stream, e.id, e.version, e.position, a.versions[i], a.positions[i])
				}
			}
			if a.expected != nil && found[0].version != *a.expected+1 {
				report("append to %s expected version %d, and its first event is version %d", a.stream, *a.expected, found[0].version)
			}
		}
	}

	for _, c := range commands {
		if c.outcome != acked {
			continue
		}
		var tx string
		for _, ce := range c.events {
			e, ok := at[streamVersion{ce.StreamID, ce.Version}]
			switch {
			case !ok || e.typ != ce.Type:
				report("%s was acknowledged with %s at version %d of %s, which holds %+v", c.mutation, ce.Type, ce.Version, ce.StreamID, e)
			case tx != "" && e.tx != tx:
				report("%s was written in more than one transaction: %s and %s", c.mutation, tx, e.tx)
			default:
				tx = e.tx
			}
		}
	}
	// A registration holds its address through a tag on its own event: every stored one
	// carries it, acknowledged or not.
	for _, e := range log {
		if e.typ == user.TypeRegistered && !slices.ContainsFunc(e.tags, func(tag string) bool { return strings.HasPrefix(tag, runtimecommand.EmailCategory+":") }) {
			report("registration %s at %s carries no email tag: %q", e.id, e.position, e.tags)
		}
	}

	for i, p := range problems {
		if i == 20 {
			t.Errorf("... and %d more", len(problems)-i)
			break
		}
		t.Error(p)
	}
	return byID
}

// readModels returns the users and orders read models, row by row, and each projection's count
// of skipped events.
func readModels(ctx context.Context, t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, q := range map[string]string{
		"users":   `SELECT to_jsonb(t)::text FROM users t ORDER BY id`,
		"orders":  `SELECT to_jsonb(t)::text FROM orders t ORDER BY id`,
		"skipped": `SELECT name || ' ' || skipped FROM projection_checkpoints WHERE name IN ('users', 'orders') ORDER BY name`,
	} {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if out[name], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// waitProjectionsLive polls the server until every projection has applied every event.
//
// Lag 0 alone is not enough: lag counts the events readers can see, and a long transaction
// elsewhere on the shared cluster can hold the newest events out of sight for a while. So it
// also waits until every user and order event in the table is applied: the read models'
// versions add up to their categories' event counts.
func waitProjectionsLive(ctx context.Context, t *testing.T, pool *pgxpool.Pool, client *http.Client, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var applied bool
		if err := pool.QueryRow(ctx, `SELECT
			(SELECT coalesce(sum(version), 0) FROM users) = (SELECT count(*) FROM events WHERE stream_id LIKE 'user-%')
			AND (SELECT coalesce(sum(version), 0) FROM orders) = (SELECT count(*) FROM events WHERE stream_id LIKE 'order-%')`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if !applied {
			if time.Now().After(deadline) {
				t.Fatalf("the read models did not apply every user and order event within 60s")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r, err := crashPost(ctx, client, addr, `{ projections { name lag status } }`, nil)
		var ps []struct {
			Name, Status string
			Lag          int
		}
		if err == nil && len(r.Errors) == 0 {
			err = json.Unmarshal(r.Data["projections"], &ps)
		}
		live := err == nil && len(r.Errors) == 0 && len(ps) > 0
		for _, p := range ps {
			live = live && p.Lag == 0 && p.Status == "LIVE"
		}
		if live {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections not live within 60s: %+v, %+v, %v", ps, r.Errors, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rebuildWithCLI runs `bin projections rebuild NAME` for each name, with env added to this
// process's environment, failing t if one does not succeed within a minute.
func rebuildWithCLI(ctx context.Context, t *testing.T, bin string, env []string, names ...string) {
	t.Helper()
	for _, name := range names {
		rebuildCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := exec.CommandContext(rebuildCtx, bin, "projections", "rebuild", name, "--log-level", "warn")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("strata projections rebuild %s with %v: %v\n%s", name, env, err, out)
		}
	}
}

// childHarness is what the tests that start `strata serve` processes share: an HTTP client whose
// connections close with the test, and one log that every server writes to.
func childHarness(t *testing.T) (*http.Client, *cli.Env, *syncBuffer) {
	t.Helper()
	// metricstest.Scrape keeps connections to the servers open in the default client.
	t.Cleanup(testHTTP.CloseIdleConnections)
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(transport.CloseIdleConnections)
	serverLog := &syncBuffer{}
	return &http.Client{Timeout: 30 * time.Second, Transport: transport}, &cli.Env{Stdout: serverLog, Stderr: serverLog}, serverLog
}

// While 8 writers append through GraphQL, the server is killed (SIGKILL) and started again:
// every acknowledged append is stored exactly once, no append or command is stored in part,
// each stream's versions run 1..n in the global order, a retried append is recognised, and the
// projections hold what a rebuild from the log gives.
func TestServerKilledUnderWritersKeepsEveryAcknowledgedAppend(t *testing.T) {
	seed := crashSeed(t) // first, so that the log has it whatever fails
	bin := buildStrata(t)
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 4)
	verifyNoLeaks(t)
	ctx := t.Context()
	client, env, serverLog := childHarness(t)
	cfg := config.Config{DBMaxConns: 20, LogLevel: slog.LevelWarn, LogFormat: "text"}
	srv, err := serveproc.Start(ctx, env.Stderr, cfg, bin, url)
	if err != nil {
		t.Fatalf("%v; server log:\n%s", err, serverLog)
	}
	t.Cleanup(srv.Stop)

	const writers = 8
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
		ws       []*crashWriter
	)
	for n := range writers {
		w := &crashWriter{n: n, addr: srv.Addr, client: client, rng: rand.New(rand.NewPCG(seed, uint64(n))), shared: map[string]int64{}}
		ws = append(ws, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, t, &answered)
		}()
	}
	// The writers stop at their first request that gets no answer, so a dead server stops them.
	crash := func() {
		_ = srv.Cmd.Process.Signal(syscall.SIGKILL)
		<-srv.Done()
		wg.Wait()
	}
	// Kill once a few hundred requests have been answered, or after 2s when the machine is
	// slow, but not before the writers have done something worth checking.
	started := time.Now()
	for n := answered.Load(); n < 500 && (n < 40 || time.Since(started) < 2*time.Second); n = answered.Load() {
		select {
		case <-srv.Done():
			wg.Wait()
			t.Fatalf("the server exited on its own (%v); log:\n%s", srv.Err(), serverLog)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(started) > 60*time.Second {
			crash()
			t.Fatalf("only %d requests answered within 60s; server log:\n%s", answered.Load(), serverLog)
		}
	}
	// The appends being cut off are grouped ones: some transactions carried several.
	m := metricstest.Scrape(t, "http://"+srv.Addr+"/metrics")
	if batches, grouped := m["strata_group_commits_total"], m["strata_group_commit_appends_total"]; batches == 0 || grouped <= batches {
		t.Errorf("before the kill, %v group commits carried %v appends: none was shared", batches, grouped)
	}
	crash()
	if !errors.As(srv.Err(), new(*exec.ExitError)) {
		t.Fatalf("the server ended with %v, want killed", srv.Err())
	}

	var (
		appends  []*crashAppend
		commands []*crashCommand
	)
	for _, w := range ws {
		appends = append(appends, w.appends...)
		commands = append(commands, w.commands...)
	}
	count := func(o outcome) (nAppends, nCommands int) {
		for _, a := range appends {
			if a.outcome == o {
				nAppends++
			}
		}
		for _, c := range commands {
			if c.outcome == o {
				nCommands++
			}
		}
		return nAppends, nCommands
	}
	ackedAppends, ackedCommands := count(acked)
	refusedAppends, _ := count(refused)
	unknownAppends, unknownCommands := count(unknownOutcome)
	t.Logf("killed after %s: appends %d acknowledged, %d refused, %d unknown; commands %d acknowledged, %d unknown",
		time.Since(started).Round(time.Millisecond), ackedAppends, refusedAppends, unknownAppends, ackedCommands, unknownCommands)
	if ackedAppends == 0 || ackedCommands == 0 {
		t.Fatalf("want acknowledged appends and commands; the test proves little")
	}

	// How far behind the projections were left says whether the restart had catching up to
	// do; a fast machine may leave them none, which the checks below still cover.
	store := eventstore.New(pool, eventstore.Options{})
	for _, p := range []struct{ name, category string }{{"users", user.Category}, {"orders", order.Category}} {
		var at string
		if err := pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, p.name).Scan(&at); err != nil {
			t.Fatal(err)
		}
		pos, err := eventstore.ParsePosition(at)
		if err != nil {
			t.Fatal(err)
		}
		lag, err := store.CountAfter(ctx, pos, p.category, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the %s projection was left %d events behind", p.name, lag)
	}

	srv, err = serveproc.Start(ctx, env.Stderr, cfg, bin, url)
	if err != nil {
		t.Fatalf("restart: %v; server log:\n%s", err, serverLog)
	}
	t.Cleanup(srv.Stop)

	stored := checkLog(ctx, t, pool, appends, commands)

	// A client that got no answer sends the same append again: one that was stored is
	// recognised and not written twice; one that was not is written now, or meets a conflict.
	retried, wereStored := 0, 0
	for _, a := range appends {
		if a.outcome != unknownOutcome {
			continue
		}
		retried++
		wasStored := len(stored[a.ids[0]]) > 0
		if wasStored {
			wereStored++
		}
		q, vars := a.request()
		r, err := crashPost(ctx, client, srv.Addr, q, vars)
		if err != nil {
			t.Fatalf("retry of an append to %s: %v", a.stream, err)
		}
		repeated, err := a.record(r)
		switch {
		case err != nil:
			t.Errorf("retry: %v", err)
		case wasStored && (a.outcome != acked || !repeated):
			t.Errorf("retry of a stored append to %s: %s %+v, want a repeated success", a.stream, r.Data["appendEvents"], r.Errors)
		case !wasStored && (a.outcome == acked && repeated || a.outcome == refused && a.expected == nil):
			t.Errorf("retry of an append to %s that was not stored: %s %+v, want it written now, or a conflict", a.stream, r.Data["appendEvents"], r.Errors)
		}
	}
	t.Logf("%d unanswered appends retried, %d of them had been stored", retried, wereStored)
	checkLog(ctx, t, pool, appends, commands)

	// The projections, once caught up, hold what a rebuild from the first event makes.
	waitProjectionsLive(ctx, t, pool, client, srv.Addr)
	before := readModels(ctx, t, pool)
	var registered, created int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE type = 'UserRegistered'), count(*) FILTER (WHERE type = 'OrderCreated') FROM events`).Scan(&registered, &created); err != nil {
		t.Fatal(err)
	}
	if len(before["users"]) != registered || len(before["orders"]) != created || registered == 0 {
		t.Errorf("%d users and %d orders in the read models, %d and %d in the log; want equal and some", len(before["users"]), len(before["orders"]), registered, created)
	}
	rebuildWithCLI(ctx, t, bin, []string{"DATABASE_URL=" + url}, "users", "orders")
	after := readModels(ctx, t, pool)
	for _, name := range []string{"users", "orders", "skipped"} {
		b, a := before[name], after[name]
		if slices.Equal(b, a) {
			continue
		}
		t.Errorf("%s: %d rows live, %d rebuilt", name, len(b), len(a))
		for i := range max(len(b), len(a)) {
			if i >= len(b) || i >= len(a) || b[i] != a[i] {
				t.Errorf("%s: first difference at row %d:\nlive:    %s\nrebuilt: %s", name, i, rowOr(b, i), rowOr(a, i))
				break
			}
		}
	}

	srv.Stop()
	if srv.Err() != nil {
		t.Errorf("the restarted server, stopped with SIGTERM: %v; log:\n%s", srv.Err(), serverLog)
	}
}

// rowOr is s[i], or a note that s has no row i.
func rowOr(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}
