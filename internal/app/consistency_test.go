package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/serveproc"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// Consistency across streams (docs/consistency.md) through the GraphQL API, on real servers and
// real PostgreSQL: conditional appends race-free with group commit on and off, across two
// server replicas and through PgBouncer; the events query and multi-stream appends.

const (
	appendIfM = `mutation($s: String!, $e: [EventInput!]!, $v: Int, $c: AppendConditionInput) {
		appendEvents(streamId: $s, events: $e, expectedVersion: $v, condition: $c) { position nextExpectedVersion repeated events { id tags } } }`
	eventsQ = `query($q: EventQueryInput!, $first: Int, $after: String) {
		events(query: $q, first: $first, after: $after) { edges { node { id streamId type tags position } } pageInfo { hasNextPage endCursor } } }`
	multiM = `mutation($w: [StreamWriteInput!]!, $c: AppendConditionInput) {
		appendEventsToStreams(writes: $w, condition: $c) { position results { streamId nextExpectedVersion repeated position events { id tags } } } }`
)

// dcbTarget is a set of servers on one database, and a pool on that database directly.
type dcbTarget struct {
	addrs  []string
	client *http.Client
	pool   *pgxpool.Pool
}

func (d dcbTarget) post(ctx context.Context, i int, query string, vars map[string]any) (gqlResponse, error) {
	return crashPost(ctx, d.client, d.addrs[i%len(d.addrs)], query, vars)
}

func (d dcbTarget) must(t *testing.T, query string, vars map[string]any, field string, out any) {
	t.Helper()
	r, err := d.post(t.Context(), 0, query, vars)
	if err != nil {
		t.Fatal(err)
	}
	ok(t, r, field, out)
}

type eventPage struct {
	Edges []struct {
		Node struct {
			ID, StreamID, Type, Position string
			Tags                         []string
		}
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

// readQuery reads every event matching q and returns them with the position of the last one
// ("" when none): the after of a condition built on this read.
func (d dcbTarget) readQuery(ctx context.Context, q map[string]any) (eventPage, string, error) {
	var all eventPage
	var after any
	for {
		r, err := d.post(ctx, 0, eventsQ, map[string]any{"q": q, "first": 1000, "after": after})
		if err != nil {
			return all, "", err
		}
		if len(r.Errors) > 0 {
			return all, "", fmt.Errorf("events: %+v", r.Errors)
		}
		var page eventPage
		if err := json.Unmarshal(r.Data["events"], &page); err != nil {
			return all, "", err
		}
		all.Edges = append(all.Edges, page.Edges...)
		if !page.PageInfo.HasNextPage {
			break
		}
		after = *page.PageInfo.EndCursor
	}
	last := ""
	if n := len(all.Edges); n > 0 {
		last = all.Edges[n-1].Node.Position
	}
	return all, last, nil
}

// settledRead reads q until it returns at least n events: the global order moves past an append
// only once every older transaction of the cluster has ended, and tests share the cluster.
func (d dcbTarget) settledRead(t *testing.T, q map[string]any, n int) (eventPage, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, last, err := d.readQuery(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Edges) >= n {
			return page, last
		}
		if time.Now().After(deadline) {
			t.Fatalf("events returned %d, want %d", len(page.Edges), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func item(types []string, tags ...string) map[string]any {
	it := map[string]any{}
	if types != nil {
		it["types"] = types
	}
	if tags != nil {
		it["tags"] = tags
	}
	return it
}

func queryOf(items ...map[string]any) map[string]any { return map[string]any{"items": items} }

func tagEvent(typ string, tags ...string) map[string]any {
	return map[string]any{"type": typ, "data": map[string]any{}, "tags": tags}
}

func condition(q map[string]any, after string) map[string]any {
	c := map[string]any{"failIfEventsMatch": q}
	if after != "" {
		c["after"] = after
	}
	return c
}

// raceAppends sends n conditional appends at once and counts the successes and the
// APPEND_CONDITION_FAILED answers; anything else fails the test.
func raceAppends(t *testing.T, d dcbTarget, n int, vars func(i int) map[string]any) (won, refused int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := d.post(t.Context(), i, appendIfM, vars(i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("append %d: %v", i, err)
			case len(r.Errors) == 0:
				won++
			case r.code() == "APPEND_CONDITION_FAILED" && r.Errors[0].Extensions["position"] != "":
				refused++
			default:
				t.Errorf("append %d: %+v", i, r.Errors)
			}
		}()
	}
	close(start)
	wg.Wait()
	return won, refused
}

// checkConditions runs the race-freedom checks of conditional appends against d.
func checkConditions(t *testing.T, d dcbTarget) {
	ctx := t.Context()
	seat := queryOf(item([]string{"SeatTaken"}, "seat:1"))

	// 50 appends with one query and one read position: exactly one is written.
	var none struct{ Position string }
	d.must(t, appendIfM, map[string]any{"s": "hall-1", "e": []any{tagEvent("HallOpened", "hall:1")}}, "appendEvents", &none)
	_, after := d.settledRead(t, queryOf(item(nil, "hall:1")), 1)
	won, refused := raceAppends(t, d, 50, func(i int) map[string]any {
		return map[string]any{"s": fmt.Sprintf("guest-%d", i), "e": []any{tagEvent("SeatTaken", "seat:1", fmt.Sprintf("guest:%d", i))}, "c": condition(seat, after)}
	})
	if won != 1 || refused != 49 {
		t.Errorf("same query: %d written, %d refused; want 1 and 49", won, refused)
	}
	page, _ := d.settledRead(t, seat, 1)
	if len(page.Edges) != 1 {
		t.Errorf("%d SeatTaken events stored, want 1", len(page.Edges))
	}

	// 50 with pairwise disjoint tags: all are written.
	won, refused = raceAppends(t, d, 50, func(i int) map[string]any {
		tag := fmt.Sprintf("room:%d", i)
		return map[string]any{"s": fmt.Sprintf("room-%d", i), "e": []any{tagEvent("RoomBooked", tag)}, "c": condition(queryOf(item([]string{"RoomBooked"}, tag)), "")}
	})
	if won != 50 || refused != 0 {
		t.Errorf("disjoint tags: %d written, %d refused; want 50 and 0", won, refused)
	}

	// A matching append committed after the read fails the condition.
	desk := queryOf(item(nil, "desk:1"))
	d.must(t, appendIfM, map[string]any{"s": "desk-1", "e": []any{tagEvent("DeskAdded", "desk:1")}}, "appendEvents", &none)
	_, after = d.settledRead(t, desk, 1)
	var later struct{ Position string }
	d.must(t, appendIfM, map[string]any{"s": "desk-1", "e": []any{tagEvent("DeskTaken", "desk:1")}}, "appendEvents", &later)
	r, err := d.post(ctx, 1, appendIfM, map[string]any{"s": "desk-1", "e": []any{tagEvent("DeskTaken", "desk:1")}, "c": condition(desk, after)})
	if err != nil || r.code() != "APPEND_CONDITION_FAILED" || r.Errors[0].Extensions["position"] != later.Position {
		t.Errorf("after a later append: %v %+v, want APPEND_CONDITION_FAILED at %s", err, r.Errors, later.Position)
	}

	// One still in flight when the conditional append starts: it waits, then fails.
	_, after = d.settledRead(t, desk, 2)
	commit := holdAppend(t, d.pool, "desk-2", "DeskTaken", "desk:1")
	result := make(chan gqlResponse, 1)
	go func() {
		r, err := d.post(ctx, 1, appendIfM, map[string]any{"s": "desk-1", "e": []any{tagEvent("DeskTaken", "desk:1")}, "c": condition(desk, after)})
		if err != nil {
			t.Error(err)
		}
		result <- r
	}()
	waitForALockWait(t, d.pool)
	pos := commit()
	if r := <-result; r.code() != "APPEND_CONDITION_FAILED" || r.Errors[0].Extensions["position"] != pos {
		t.Errorf("after an append in flight: %+v, want APPEND_CONDITION_FAILED at %s", r.Errors, pos)
	}
}

// holdAppend appends one event in a transaction of its own, as the append statement does, and
// leaves it open; commit commits it and returns the event's position.
func holdAppend(t *testing.T, pool *pgxpool.Pool, stream, typ string, tags ...string) (commit func() string) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	keys := []string{"t:" + typ}
	for _, tag := range tags {
		keys = append(keys, "g:"+tag)
	}
	var first int64
	var xid uint64
	var positions []int64
	var at time.Time
	err = tx.QueryRow(ctx, pgsql.EventstoreAppendOneToAny, stream, nil, 1, uuid.New(), typ, 1, []byte(`{}`), []byte(`{}`), tags, keys).Scan(&first, &xid, &positions, &at)
	if err != nil {
		t.Fatal(err)
	}
	return func() string {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%016x%016x", xid, positions[0])
	}
}

// waitForALockWait waits until a backend of the pool's database waits for a lock.
func waitForALockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no backend waits for a lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConditionalAppendsThroughTheAPI(t *testing.T) {
	for _, mode := range []string{"--group-commit=true", "--group-commit=false"} {
		t.Run(mode, func(t *testing.T) {
			url := dbtest.URL(t)
			srv := startServeOn(t, url, mode)
			checkConditions(t, dcbTarget{addrs: []string{srv.addr}, client: testHTTP, pool: dbtest.PoolFor(t, url, 2)})
		})
	}
}

func TestConditionalAppendsAcrossReplicasAndThroughPgBouncer(t *testing.T) {
	bin := buildStrata(t)
	client, env, serverLog := childHarness(t)
	cfg := config.Config{DBMaxConns: 10, LogLevel: slog.LevelInfo, LogFormat: "text"}
	for _, via := range []string{"two replicas", "pgbouncer"} {
		t.Run(via, func(t *testing.T) {
			direct := dbtest.URL(t)
			url, extra := direct, []string(nil)
			if via == "pgbouncer" {
				url = dbtest.PgBouncer(t, direct) + "&default_query_exec_mode=exec"
				extra = []string{"--listen-database-url", direct}
			}
			var addrs []string
			for i := range 2 {
				srv, err := serveproc.Start(t.Context(), env.Stderr, cfg, bin, url, extra...)
				if err != nil {
					t.Fatalf("server %d: %v; log:\n%s", i, err, serverLog)
				}
				t.Cleanup(srv.Stop)
				addrs = append(addrs, srv.Addr)
			}
			checkConditions(t, dcbTarget{addrs: addrs, client: client, pool: dbtest.PoolFor(t, direct, 2)})
		})
	}
}

// The specification's course example: at most 10 students per course, 60 clients each reading
// the course's subscriptions and appending under a condition on that read, retrying with a
// fresh read when the condition fails.
func TestCourseCapacityHoldsUnderConcurrentClients(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	d := dcbTarget{addrs: []string{srv.addr}, client: testHTTP}
	subscriptions := queryOf(item([]string{"StudentSubscribed"}, "course:c1"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined, full := 0, 0
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				page, after, err := d.readQuery(t.Context(), subscriptions)
				if err != nil {
					t.Error(err)
					return
				}
				if len(page.Edges) >= 10 {
					mu.Lock()
					full++
					mu.Unlock()
					return
				}
				r, err := d.post(t.Context(), i, appendIfM, map[string]any{
					"s": fmt.Sprintf("student-%d", i), "e": []any{tagEvent("StudentSubscribed", "course:c1", fmt.Sprintf("student:%d", i))},
					"c": condition(subscriptions, after),
				})
				switch {
				case err != nil:
					t.Error(err)
					return
				case len(r.Errors) == 0:
					mu.Lock()
					joined++
					mu.Unlock()
					return
				case r.code() == "APPEND_CONDITION_FAILED", r.code() == "BAD_USER_INPUT" && attempt < 1000:
					// Someone else joined since the read (or the read position is not settled
					// yet): read again.
				default:
					t.Errorf("client %d: %+v", i, r.Errors)
					return
				}
			}
		}()
	}
	wg.Wait()
	if joined != 10 || full != 50 {
		t.Errorf("%d joined, %d found the course full; want 10 and 50", joined, full)
	}
	page, _ := d.settledRead(t, subscriptions, 10)
	if len(page.Edges) != 10 {
		t.Errorf("%d subscriptions stored, want 10", len(page.Edges))
	}
}

func TestMultiStreamAppendsThroughTheAPI(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	d := dcbTarget{addrs: []string{srv.addr}, client: testHTTP}
	type result struct {
		Position string
		Results  []struct {
			StreamID            string
			NextExpectedVersion int
			Repeated            bool
			Position            string
			Events              []struct{ ID string }
		}
	}
	write := func(stream string, v any, events ...map[string]any) map[string]any {
		w := map[string]any{"streamId": stream, "events": events}
		if events == nil {
			w["events"] = []any{}
		}
		if v != nil {
			w["expectedVersion"] = v
		}
		return w
	}
	var res result
	d.must(t, multiM, map[string]any{"w": []any{write("shelf-1", 0, tagEvent("ShelfAdded", "shelf:1")), write("shelf-2", 0, tagEvent("ShelfAdded", "shelf:2"))}}, "appendEventsToStreams", &res)
	if len(res.Results) != 2 || res.Results[1].Position != res.Position {
		t.Fatalf("first write: %+v", res)
	}

	// A wrong expected version in any position writes nothing and names its stream. Counted
	// in the table: reads of the log lag behind other tests' transactions.
	pool := dbtest.PoolFor(t, url, 2)
	total := func() int {
		var n int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := total()
	for i, ws := range [][]any{
		{write("shelf-1", 5, tagEvent("BookPlaced", "shelf:1")), write("shelf-2", 1, tagEvent("BookPlaced", "shelf:2")), write("shelf-3", nil, tagEvent("ShelfAdded"))},
		{write("shelf-1", 1, tagEvent("BookPlaced", "shelf:1")), write("shelf-2", 5, tagEvent("BookPlaced", "shelf:2")), write("shelf-3", nil, tagEvent("ShelfAdded"))},
		{write("shelf-3", nil, tagEvent("ShelfAdded")), write("shelf-1", 1, tagEvent("BookPlaced", "shelf:1")), write("shelf-2", 5)},
	} {
		r, err := d.post(t.Context(), 0, multiM, map[string]any{"w": ws})
		if err != nil || r.code() != "WRONG_EXPECTED_VERSION" || r.Errors[0].Extensions["streamId"] != "shelf-2" && r.Errors[0].Extensions["streamId"] != "shelf-1" {
			t.Errorf("case %d: %v %+v, want WRONG_EXPECTED_VERSION naming the stream", i, err, r.Errors)
		}
	}
	// A failing condition writes nothing either.
	r, err := d.post(t.Context(), 0, multiM, map[string]any{
		"w": []any{write("shelf-1", 1, tagEvent("BookPlaced", "shelf:1")), write("shelf-2", 1)},
		"c": condition(queryOf(item([]string{"ShelfAdded"})), ""),
	})
	if err != nil || r.code() != "APPEND_CONDITION_FAILED" {
		t.Errorf("failing condition: %v %+v", err, r.Errors)
	}
	if after := total(); after != before {
		t.Fatalf("refused writes stored %d events", after-before)
	}

	// A check-only write, and an idempotent retry.
	id := uuid.NewString()
	book := tagEvent("BookPlaced", "shelf:1", "book:1")
	book["id"] = id
	vars := map[string]any{
		"w": []any{write("shelf-1", 1, book), write("shelf-2", 1)},
		"c": condition(queryOf(item(nil, "book:1")), ""),
	}
	d.must(t, multiM, vars, "appendEventsToStreams", &res)
	if len(res.Results) != 2 || res.Results[0].NextExpectedVersion != 2 || res.Results[1].NextExpectedVersion != 1 || len(res.Results[1].Events) != 0 || res.Results[0].Repeated {
		t.Fatalf("write with a check: %+v", res)
	}
	first := res.Position
	d.must(t, multiM, vars, "appendEventsToStreams", &res)
	if !res.Results[0].Repeated || res.Position != first {
		t.Fatalf("retry: %+v, want repeated at %s", res, first)
	}
	if after := total(); after != before+1 {
		t.Fatalf("%d events stored, want %d", after, before+1)
	}
}

// The events query returns exactly what a filter over allEvents keeps, under concurrent
// writers, and refuses bad queries.
func TestEventsQueryMatchesAllEvents(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	d := dcbTarget{addrs: []string{srv.addr}, client: testHTTP}
	q := queryOf(item([]string{"A"}, "x:1"), item(nil, "y:1", "x:2"))
	matches := func(typ string, tags []string) bool {
		return typ == "A" && slices.Contains(tags, "x:1") || slices.Contains(tags, "y:1") && slices.Contains(tags, "x:2")
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				var tags []string
				for k, tag := range []string{"x:1", "x:2", "y:1"} {
					if (i>>k)&1 == 1 {
						tags = append(tags, tag)
					}
				}
				typ := []string{"A", "B"}[(i+w)%2]
				r, err := d.post(t.Context(), 0, appendIfM, map[string]any{"s": fmt.Sprintf("w%d-%d", w, i%3), "e": []any{tagEvent(typ, tags...)}})
				if err != nil || len(r.Errors) > 0 {
					t.Errorf("append: %v %+v", err, r.Errors)
					return
				}
			}
		}()
	}
	// Page through the query while the writers run, then to the end.
	var got, want []string
	allShown := false
	var after any
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	finished := false
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := d.post(t.Context(), 0, eventsQ, map[string]any{"q": q, "first": 7, "after": after})
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("events: %v %+v", err, r.Errors)
		}
		var page eventPage
		if err := json.Unmarshal(r.Data["events"], &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Edges {
			got = append(got, e.Node.Position)
		}
		if page.PageInfo.EndCursor != nil {
			after = *page.PageInfo.EndCursor
		}
		if finished && len(page.Edges) == 0 && allShown {
			break
		}
		if finished && len(page.Edges) == 0 {
			var all struct{ AllEvents eventPage }
			ar, err := d.post(t.Context(), 0, `{ allEvents(first: 1000) { edges { node { type tags position } } } }`, nil)
			if err != nil || len(ar.Errors) > 0 {
				t.Fatalf("allEvents: %v %+v", err, ar.Errors)
			}
			if err := json.Unmarshal(ar.Data["allEvents"], &all.AllEvents); err != nil {
				t.Fatal(err)
			}
			if len(all.AllEvents.Edges) == 120 {
				// Every event is readable now: page the query to its end once more, then compare.
				for _, e := range all.AllEvents.Edges {
					if matches(e.Node.Type, e.Node.Tags) {
						want = append(want, e.Node.Position)
					}
				}
				allShown = true
				continue
			}
			if time.Now().After(deadline) {
				t.Fatalf("allEvents shows %d of 120 events", len(all.AllEvents.Edges))
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case <-done:
			finished = true
		default:
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events returned %d positions, a filter over allEvents %d", len(got), len(want))
	}
	if len(want) == 0 {
		t.Fatal("nothing matched: the data do not exercise the query")
	}

	for name, bad := range map[string]map[string]any{
		"an empty tag":   queryOf(item(nil, "")),
		"an empty type":  queryOf(item([]string{""})),
		"33 tags":        queryOf(item(nil, slices.Repeat([]string{"t"}, 33)...)),
		"a control char": queryOf(item(nil, "a\nb")),
	} {
		r, err := d.post(t.Context(), 0, eventsQ, map[string]any{"q": bad})
		if err != nil || r.code() != "BAD_USER_INPUT" {
			t.Errorf("%s: %v %+v, want BAD_USER_INPUT", name, err, r.Errors)
		}
	}
}

// The built-in rules on tags and conditions, through the API: one user per address, and a
// product's stock reserved by orders, never below 0, given back by cancellations.
func TestEmailAndStockRulesThroughTheAPI(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	d := dcbTarget{addrs: []string{srv.addr}, client: testHTTP}
	ctx := t.Context()

	// 20 registrations of one address at once: exactly one user.
	var mu sync.Mutex
	var wg sync.WaitGroup
	registered, taken := 0, 0
	var customer string
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := d.post(ctx, i, registerM, map[string]any{"n": fmt.Sprintf("Racer %d", i), "e": "race@example.com"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case len(r.Errors) == 0:
				registered++
				var u userOut
				if err := json.Unmarshal(r.Data["registerUser"], &u); err != nil {
					t.Error(err)
				}
				customer = u.User.ID
			case r.code() == "INVARIANT_VIOLATION" && r.rule() == "email-unique":
				taken++
			default:
				t.Errorf("registration %d: %+v", i, r.Errors)
			}
		}()
	}
	wg.Wait()
	if registered != 1 || taken != 19 {
		t.Fatalf("%d registered, %d refused as taken; want 1 and 19", registered, taken)
	}

	// A product with 10 in stock, and 40 orders of one unit at once.
	var p productOut
	d.must(t, createProductM, map[string]any{"sku": "STOCK-1", "n": "Lamp", "p": "10.00", "s": 10}, "createProduct", &p)
	lamp := p.Product.ID
	var orders []string
	outOfStock := 0
	last := p.Position
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half of them spell the SKU in another case: one SKU.
			sku := "STOCK-1"
			if i%2 == 1 {
				sku = "stock-1"
			}
			r, err := d.post(ctx, i, createM, map[string]any{"c": customer, "items": items(sku, 1, "10.00")})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case len(r.Errors) == 0:
				var o orderOut
				if err := json.Unmarshal(r.Data["createOrder"], &o); err != nil {
					t.Error(err)
				}
				orders = append(orders, o.Order.ID)
				if o.Position > last {
					last = o.Position
				}
			case r.code() == "INVARIANT_VIOLATION" && r.rule() == "out-of-stock":
				outOfStock++
			default:
				t.Errorf("order %d: %+v", i, r.Errors)
			}
		}()
	}
	wg.Wait()
	if len(orders) != 10 || outOfStock != 30 {
		t.Fatalf("%d orders, %d refused as out of stock; want 10 and 30", len(orders), outOfStock)
	}
	stock := func(at string) int {
		t.Helper()
		var got struct{ Stock int }
		d.must(t, `query($id: ID!, $p: String) { product(id: $id, consistentWith: $p) { stock } }`, map[string]any{"id": lamp, "p": at}, "product", &got)
		return got.Stock
	}
	if s := stock(last); s != 0 {
		t.Errorf("stock after 10 orders: %d, want 0", s)
	}
	// Stock reserved per product in the log: the product's own stream says so too.
	page, _ := d.settledRead(t, queryOf(item([]string{"StockReserved"})), 10)
	if len(page.Edges) != 10 {
		t.Errorf("%d StockReserved events, want 10", len(page.Edges))
	}

	// Cancelling three gives three back.
	for _, id := range orders[:3] {
		var o orderOut
		d.must(t, cancelM, map[string]any{"id": id, "r": "changed my mind"}, "cancelOrder", &o)
		last = o.Position
	}
	if s := stock(last); s != 3 {
		t.Errorf("stock after 3 cancellations: %d, want 3", s)
	}

	// A discontinued product's SKU is refused; an unknown SKU is taken as before.
	d.must(t, createProductM, map[string]any{"sku": "GONE-1", "n": "Old", "p": "1.00", "s": 5}, "createProduct", &p)
	gone := p.Product.ID
	d.must(t, discontinueProdM, map[string]any{"id": gone}, "discontinueProduct", &p)
	r, err := d.post(ctx, 0, createM, map[string]any{"c": customer, "items": items("gone-1", 1, "1.00")})
	if err != nil || r.code() != "INVARIANT_VIOLATION" || r.rule() != "product-active" {
		t.Errorf("an order of a discontinued product: %v %+v, want product-active", err, r.Errors)
	}
	var o orderOut
	d.must(t, createM, map[string]any{"c": customer, "items": items("NOBODYS-SKU", 2, "1.00")}, "createOrder", &o)
	if o.Order.Status != "PENDING" {
		t.Errorf("an order of an unknown SKU: %+v", o)
	}

	// Nobody writes the aggregates' events or tags around their commands: a forged reservation,
	// a tag that would hold an address or a SKU.
	for name, e := range map[string]map[string]any{
		"an aggregate's event type": tagEvent("StockReserved"),
		"an address's tag":          tagEvent("Noted", "email:"+strings.Repeat("a", 64)),
		"a SKU's tag":               tagEvent("Noted", "productsku:"+strings.Repeat("b", 64)),
	} {
		r, err := d.post(ctx, 0, appendIfM, map[string]any{"s": "forged-1", "e": []any{e}})
		if err != nil || r.code() != "BAD_USER_INPUT" {
			t.Errorf("appendEvents with %s: %v %+v, want BAD_USER_INPUT", name, err, r.Errors)
		}
		r, err = d.post(ctx, 0, multiM, map[string]any{"w": []any{map[string]any{"streamId": "forged-2", "events": []any{e}}}})
		if err != nil || r.code() != "BAD_USER_INPUT" {
			t.Errorf("appendEventsToStreams with %s: %v %+v, want BAD_USER_INPUT", name, err, r.Errors)
		}
	}
	r, err = d.post(ctx, 0, appendIfM, map[string]any{"s": "free-1", "e": []any{tagEvent("Noted", "emails:1", "product:1")}})
	if err != nil || len(r.Errors) > 0 {
		t.Errorf("tags of no aggregate's categories: %v %+v", err, r.Errors)
	}
}

// The events subscription with a query delivers exactly the matching events, caught up from
// after and then live, while writers append matching and other events.
func TestEventsSubscriptionWithAQuery(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url)
	d := dcbTarget{addrs: []string{srv.addr}, client: testHTTP}
	const sub = `subscription($after: String, $q: EventQueryInput) { events(after: $after, query: $q) { type tags position } }`
	q := queryOf(item(nil, "hot"), item([]string{"Special"}))
	matches := func(typ string, tags []string) bool { return slices.Contains(tags, "hot") || typ == "Special" }

	var start struct{ Position string }
	d.must(t, appendIfM, map[string]any{"s": "marker-1", "e": []any{tagEvent("Start", "hot")}}, "appendEvents", &start)
	type collector struct {
		mu  sync.Mutex
		got []string
		err error
	}
	open := func() *collector {
		t.Helper()
		c, err := wsclient.Dial(t.Context(), "ws://"+srv.addr+"/query", wsclient.TransportWS, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("1", sub, map[string]any{"after": start.Position, "q": q}); err != nil {
			t.Fatal(err)
		}
		col := &collector{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				r, err := c.Next(0)
				col.mu.Lock()
				if err == nil && len(r.Errors) > 0 && string(r.Errors) != "null" {
					err = fmt.Errorf("subscription error: %s", r.Errors)
				}
				if err != nil || r.Done {
					col.err = err
					col.mu.Unlock()
					return
				}
				var ev struct {
					Events struct {
						Type, Position string
						Tags           []string
					}
				}
				if err := json.Unmarshal(r.Data, &ev); err != nil {
					col.err = err
					col.mu.Unlock()
					return
				}
				if !matches(ev.Events.Type, ev.Events.Tags) {
					col.err = fmt.Errorf("delivered %s %q, which does not match", ev.Events.Type, ev.Events.Tags)
				}
				col.got = append(col.got, ev.Events.Position)
				col.mu.Unlock()
			}
		}()
		t.Cleanup(func() { _ = c.Close(); <-done })
		return col
	}
	first := open()
	mid, opened := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				if w == 0 && i == 15 { // half way: the test subscribes again while the others write
					close(mid)
					<-opened
				}
				typ, tags := "Plain", []string{fmt.Sprintf("w:%d", w)}
				switch i % 3 {
				case 0:
					tags = append(tags, "hot")
				case 1:
					if w%2 == 0 {
						typ = "Special"
					}
				}
				r, err := d.post(t.Context(), 0, appendIfM, map[string]any{"s": fmt.Sprintf("w%d-%d", w, i%2), "e": []any{tagEvent(typ, tags...)}})
				if err != nil || len(r.Errors) > 0 {
					t.Errorf("append: %v %+v", err, r.Errors)
					return
				}
			}
		}()
	}
	<-mid
	second := open()
	close(opened)
	wg.Wait()

	// What matches, from a filter over allEvents after start, once allEvents shows them all.
	var want []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var all eventPage
		r, err := d.post(t.Context(), 0, `query($a: String) { allEvents(first: 1000, after: $a) { edges { node { type tags position } } } }`, map[string]any{"a": start.Position})
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("allEvents: %v %+v", err, r.Errors)
		}
		if err := json.Unmarshal(r.Data["allEvents"], &all); err != nil {
			t.Fatal(err)
		}
		if len(all.Edges) == 120 {
			for _, e := range all.Edges {
				if matches(e.Node.Type, e.Node.Tags) {
					want = append(want, e.Node.Position)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("allEvents shows %d of 120 events after the start", len(all.Edges))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for name, col := range map[string]*collector{"subscribed before the writes": first, "subscribed during them": second} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			col.mu.Lock()
			got, err := slices.Clone(col.got), col.err
			col.mu.Unlock()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) >= len(want) {
				if !slices.Equal(got, want) {
					t.Errorf("%s: delivered %d positions, a filter over allEvents %d (or another order)", name, len(got), len(want))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d events after 30s", name, len(got), len(want))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
