package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/platform/metrics/metricstest"
	"github.com/strata-es/strata/internal/platform/pgserver"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// replicaSetup is a private primary, a hot standby of it, and `strata serve` on the primary
// with the standby as its read replica.
type replicaSetup struct {
	primary, standby *pgserver.Server
	srv              *serveRun
	standbyConn      *pgx.Conn
}

// startWithReplica starts a primary and its hot standby (private clusters) and a server that
// writes to the one and reads from the other. The consistency timeout is short: a replica that
// is paused costs a consistentWith read half of it.
func startWithReplica(t *testing.T) *replicaSetup {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	fast := map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
	stop := func(s *pgserver.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	}
	primary, err := pgserver.Start(ctx, pgserver.Options{Dir: dbtest.TempDir(t), Settings: fast})
	if err != nil {
		t.Fatalf("start the primary: %v", err)
	}
	t.Cleanup(func() { stop(primary) })
	standby, err := pgserver.StartStandby(ctx, primary, pgserver.Options{Dir: dbtest.TempDir(t), Settings: fast})
	if err != nil {
		t.Fatalf("start the standby: %v", err)
	}
	t.Cleanup(func() { stop(standby) }) // cleanups run last first: the standby stops before the primary
	conn, err := pgx.Connect(ctx, standby.URL(pgserver.Superuser))
	if err != nil {
		t.Fatalf("connect to the standby: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	srv := startServeOn(t, primary.URL(pgserver.Superuser),
		"--read-database-url", standby.URL(pgserver.Superuser), "--consistency-timeout", "4s")
	return &replicaSetup{primary: primary, standby: standby, srv: srv, standbyConn: conn}
}

// pauseReplay stops the standby replaying WAL, and resumes it when the test ends.
func (s *replicaSetup) pauseReplay(t *testing.T) {
	t.Helper()
	if _, err := s.standbyConn.Exec(t.Context(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "standby replay paused", 15*time.Second, func() bool {
		var state string
		err := s.standbyConn.QueryRow(t.Context(), `SELECT pg_get_wal_replay_pause_state()`).Scan(&state)
		return err == nil && state == "paused"
	})
	t.Cleanup(func() { _, _ = s.standbyConn.Exec(context.Background(), `SELECT pg_wal_replay_resume()`) })
}

func (s *replicaSetup) resumeReplay(t *testing.T) {
	t.Helper()
	if _, err := s.standbyConn.Exec(t.Context(), `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
}

// caughtUp waits until the standby has replayed everything the primary has written.
func (s *replicaSetup) caughtUp(t *testing.T) {
	t.Helper()
	pc, err := pgx.Connect(t.Context(), s.primary.URL(pgserver.Superuser))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close(context.Background()) }()
	var lsn string
	if err := pc.QueryRow(t.Context(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "standby replayed "+lsn, 20*time.Second, func() bool {
		var done bool
		err := s.standbyConn.QueryRow(t.Context(), `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done)
		return err == nil && done
	})
}

func (s *replicaSetup) metrics(t *testing.T) metricstest.Samples {
	t.Helper()
	return metricstest.Scrape(t, "http://"+s.srv.addr+"/metrics")
}

func fallbacks(m metricstest.Samples, reason string) float64 {
	return m[`strata_read_fallbacks_total{reason="`+reason+`"}`]
}

const (
	userNameQ  = `query($id: ID!, $p: String) { user(id: $id, consistentWith: $p) { name version } }`
	renameM    = `mutation($id: ID!, $n: String!, $v: Int) { renameUser(id: $id, name: $n, expectedVersion: $v) { user { name version } position } }`
	allEventsQ = `query($after: String) { allEvents(first: 100, after: $after) { edges { node { position streamId version type } } pageInfo { endCursor } } }`
)

type nameVersion struct {
	Name    string
	Version int
}

func userName(t *testing.T, addr, id string, consistentWith any) nameVersion {
	t.Helper()
	var u nameVersion
	ok(t, gql(t, addr, userNameQ, map[string]any{"id": id, "p": consistentWith}), "user", &u)
	return u
}

type eventRef struct {
	Position, StreamID, Type string
	Version                  int
}

// allEventsAfter pages allEvents after a position until a page comes back empty.
func allEventsAfter(t *testing.T, addr string, after any) (events []eventRef, end any) {
	t.Helper()
	end = after
	for {
		var page struct {
			Edges    []struct{ Node eventRef }
			PageInfo struct{ EndCursor *string }
		}
		ok(t, gql(t, addr, allEventsQ, map[string]any{"after": end}), "allEvents", &page)
		if len(page.Edges) == 0 {
			return events, end
		}
		for _, e := range page.Edges {
			events = append(events, e.Node)
		}
		end = *page.PageInfo.EndCursor
	}
}

// Plain queries read the replica, stale while its replay is paused; the same query with
// consistentWith answers fresh (from the primary, once the replica has not shown the position in
// time); a command right after a stale read loads its aggregate from the primary; allEvents read
// from the paused replica and continued after it resumes sees every event once; once replay
// resumes the plain query catches up.
func TestReplicaServesStaleReadsAndConsistentWithStaysFresh(t *testing.T) {
	s := startWithReplica(t)
	a := s.srv.addr
	var ada userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &ada)
	if u := userName(t, a, ada.User.ID, ada.Position); u.Name != "Ada" {
		t.Fatalf("user after consistentWith: %+v", u)
	}
	s.caughtUp(t)
	seen, cursor := allEventsAfter(t, a, nil)
	if len(seen) != 1 { // the user's event, tagged with the address it takes
		t.Fatalf("allEvents before the pause: %+v, want 1 event", seen)
	}

	s.pauseReplay(t)
	var renamed userOut
	ok(t, gql(t, a, renameM, map[string]any{"id": ada.User.ID, "n": "Ada King", "v": 1}), "renameUser", &renamed)
	before := fallbacks(s.metrics(t), "behind")
	if u := userName(t, a, ada.User.ID, renamed.Position); u.Name != "Ada King" || u.Version != 2 {
		t.Errorf("user with consistentWith while the replica is paused: %+v, want Ada King at version 2", u)
	}
	if after := fallbacks(s.metrics(t), "behind"); after != before+1 {
		t.Errorf(`strata_read_fallbacks_total{reason="behind"} went from %v to %v, want one more`, before, after)
	}
	// A mutation's answer reads the primary, whose users read model has the new name (the read
	// with consistentWith above saw it there); the paused replica still has the old one.
	var o orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 1, "1.00")}), "createOrder", &o)
	if o.Order.Customer.Name != "Ada King" {
		t.Errorf("createOrder's customer while the replica is paused: %q, want the primary's Ada King", o.Order.Customer.Name)
	}
	if u := userName(t, a, ada.User.ID, nil); u.Name != "Ada" || u.Version != 1 {
		t.Errorf("plain user query while the replica is paused: %+v, want the replica's stale Ada at version 1", u)
	}
	if more, _ := allEventsAfter(t, a, cursor); len(more) != 0 {
		t.Errorf("allEvents on the paused replica shows %+v, written after the pause", more)
	}
	// A command right after the stale read: its aggregate comes from the primary, at version 2.
	var again userOut
	ok(t, gql(t, a, renameM, map[string]any{"id": ada.User.ID, "n": "Ada Lovelace", "v": 2}), "renameUser", &again)
	if again.User.Version != 3 {
		t.Errorf("rename after a stale read: %+v, want version 3", again.User)
	}

	s.resumeReplay(t)
	waitUntil(t, "the plain query shows the rename", 20*time.Second, func() bool {
		return userName(t, a, ada.User.ID, nil) == nameVersion{Name: "Ada Lovelace", Version: 3}
	})
	var primary []eventRef
	pc := dbtest.PoolFor(t, s.primary.URL(pgserver.Superuser), 1)
	rows, err := pc.Query(t.Context(), `SELECT stream_id, version FROM events ORDER BY transaction_id, position`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e eventRef
		if err := rows.Scan(&e.StreamID, &e.Version); err != nil {
			t.Fatal(err)
		}
		primary = append(primary, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Paging on from the cursor taken on the paused replica: every event once, in the primary's
	// order. (The replica shows an event once it has replayed it and every transaction older.)
	all := seen
	waitUntil(t, "allEvents on the replica shows every event", 20*time.Second, func() bool {
		var more []eventRef
		more, cursor = allEventsAfter(t, a, cursor)
		all = append(all, more...)
		return len(all) >= len(primary)
	})
	if len(all) != len(primary) {
		t.Fatalf("allEvents across the pause returned %d events, the primary holds %d:\n%+v", len(all), len(primary), all)
	}
	for i := range all {
		if all[i].StreamID != primary[i].StreamID || all[i].Version != primary[i].Version {
			t.Errorf("allEvents[%d] = %s@%d, the primary's global order has %s@%d", i, all[i].StreamID, all[i].Version, primary[i].StreamID, primary[i].Version)
		}
	}
	if got := fallbacks(s.metrics(t), "unavailable"); got != 0 {
		t.Errorf(`strata_read_fallbacks_total{reason="unavailable"} = %v, want 0`, got)
	}
}

// History and time travel read from the replica answer as the primary does: while it has
// replayed what they need they come from it, and when it has not (paused) they fall back.
func TestReplicaHistoryAndTimeTravelMatchThePrimary(t *testing.T) {
	s := startWithReplica(t)
	a := s.srv.addr
	onPrimary := startServeOn(t, s.primary.URL(pgserver.Superuser)) // no replica: the reference
	var ada userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &ada)
	var o orderOut
	ok(t, gql(t, a, createM, map[string]any{"c": ada.User.ID, "items": items("A", 2, "5.00")}), "createOrder", &o)
	ok(t, gql(t, a, payM, map[string]any{"id": o.Order.ID, "a": "10.00"}), "payOrder", &o)
	time.Sleep(20 * time.Millisecond)
	paid := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(20 * time.Millisecond)
	var shipped struct{ Position string }
	ok(t, gql(t, a, shipM, map[string]any{"id": o.Order.ID}), "shipOrder", &shipped)
	userName(t, a, ada.User.ID, shipped.Position) // the projections have it all
	s.caughtUp(t)

	vars := map[string]any{"o": o.Order.ID, "u": ada.User.ID, "t": paid, "s": "order-" + o.Order.ID}
	queries := map[string]string{
		"order history":      `query($o: ID!) { order(id: $o) { history { edges { cursor node { event { type version position } state { status version } changes { field before after } } } } } }`,
		"order at version 2": `query($o: ID!) { order(id: $o, atVersion: 2) { status version total } }`,
		"order as of":        `query($o: ID!, $t: Time!) { order(id: $o, asOf: $t) { status version } }`,
		"orders as of":       `query($t: Time!) { orders(asOf: $t) { edges { node { id status version } } } }`,
		"users as of":        `query($t: Time!) { users(asOf: $t) { edges { node { id name version } } } }`,
		"stream events":      `query($s: String!) { stream(id: $s) { version events { edges { node { version type position data } } } } }`,
		"all events":         `{ allEvents { edges { node { position streamId version type } } } }`,
		"user and orders":    `query($u: ID!) { user(id: $u) { name orders { edges { node { status customer { name } } } } } }`,
	}
	same := func(what string) {
		t.Helper()
		for name, q := range queries {
			viaReplica, viaPrimary := gql(t, a, q, vars), gql(t, onPrimary.addr, q, vars)
			if len(viaReplica.Errors) > 0 || len(viaPrimary.Errors) > 0 {
				t.Errorf("%s, %s: errors %+v / %+v", what, name, viaReplica.Errors, viaPrimary.Errors)
				continue
			}
			r, p := mustJSON(t, viaReplica.Data), mustJSON(t, viaPrimary.Data)
			if r != p {
				t.Errorf("%s, %s:\nwith the replica %s\nthe primary     %s", what, name, r, p)
			}
		}
	}
	same("replica caught up")
	if got := s.metrics(t); fallbacks(got, "behind")+fallbacks(got, "unavailable")+fallbacks(got, "down")+fallbacks(got, "error") != 0 {
		t.Errorf("fallbacks while the replica was caught up: behind %v, unavailable %v, down %v, error %v; log:\n%s",
			fallbacks(got, "behind"), fallbacks(got, "unavailable"), fallbacks(got, "down"), fallbacks(got, "error"), s.srv.stderr.String())
	}

	// Paused, the replica lacks the rename: history read from it is stale, while a time travel
	// to the rename or a version it lacks goes to the primary.
	s.pauseReplay(t)
	var renamed userOut
	ok(t, gql(t, a, renameM, map[string]any{"id": ada.User.ID, "n": "Ada King"}), "renameUser", &renamed)
	const userHistoryQ = `query($u: ID!) { user(id: $u) { history { edges { node { state { name version } } } } } }`
	var h struct {
		History struct{ Edges []json.RawMessage }
	}
	ok(t, gql(t, a, userHistoryQ, map[string]any{"u": ada.User.ID}), "user", &h)
	if len(h.History.Edges) != 1 {
		t.Errorf("user history from the paused replica has %d entries, want its stale 1", len(h.History.Edges))
	}
	time.Sleep(20 * time.Millisecond)
	vars["t"] = time.Now().UTC().Format(time.RFC3339Nano)
	queries = map[string]string{
		"user at version 2": `query($u: ID!) { user(id: $u, atVersion: 2) { name version } }`,
		"user as of now":    `query($u: ID!, $t: Time!) { user(id: $u, asOf: $t) { name version } }`,
		"users as of now":   `query($t: Time!) { users(asOf: $t) { edges { node { id name version } } } }`,
	}
	before := fallbacks(s.metrics(t), "behind")
	same("replica paused")
	if after := fallbacks(s.metrics(t), "behind"); after < before+3 {
		t.Errorf(`strata_read_fallbacks_total{reason="behind"} went from %v to %v, want 3 more`, before, after)
	}
	var u struct{ Name string }
	ok(t, gql(t, a, `query($u: ID!) { user(id: $u, atVersion: 2) { name } }`, map[string]any{"u": ada.User.ID}), "user", &u)
	if u.Name != "Ada King" {
		t.Errorf("user at version 2 with the replica paused: %+v, want Ada King", u)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A stopped replica does not fail reads: the primary answers them, the fallbacks are counted,
// and /readyz says so without failing.
func TestReplicaDownReadsFallBackToThePrimary(t *testing.T) {
	s := startWithReplica(t)
	a := s.srv.addr
	var ada userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "Ada", "e": "ada@example.com"}), "registerUser", &ada)
	userName(t, a, ada.User.ID, ada.Position) // the projection has it
	s.caughtUp(t)
	if u := userName(t, a, ada.User.ID, nil); u.Name != "Ada" {
		t.Fatalf("user from the replica: %+v", u)
	}
	if !strings.Contains(readyz(t, a), "read replica: ok") {
		t.Errorf("/readyz with the replica up: %q, want it to say read replica: ok", readyz(t, a))
	}
	if got := s.metrics(t)["strata_read_replica_up"]; got != 1 {
		t.Errorf("strata_read_replica_up = %v with the replica up, want 1", got)
	}

	_ = s.standbyConn.Close(t.Context())
	stopCtx, cancel := context.WithTimeout(t.Context(), pgControlTimeout)
	defer cancel()
	if err := s.standby.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	var renamed userOut
	ok(t, gql(t, a, renameM, map[string]any{"id": ada.User.ID, "n": "Ada King", "v": 1}), "renameUser", &renamed)
	if u := userName(t, a, ada.User.ID, renamed.Position); u.Name != "Ada King" {
		t.Errorf("user with consistentWith, replica down: %+v", u)
	}
	if u := userName(t, a, ada.User.ID, nil); u.Name != "Ada King" {
		t.Errorf("plain user query, replica down: %+v (the primary answers: fresh)", u)
	}
	var stream struct{ Version int }
	ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { version } }`, map[string]any{"s": "user-" + ada.User.ID}), "stream", &stream)
	if stream.Version != 2 {
		t.Errorf("stream version, replica down: %d, want 2", stream.Version)
	}
	if events, _ := allEventsAfter(t, a, nil); len(events) != 2 {
		t.Errorf("allEvents, replica down: %d events, want 2 (the registration and the rename)", len(events))
	}
	m := s.metrics(t)
	if fallbacks(m, "unavailable") < 1 || fallbacks(m, "unavailable")+fallbacks(m, "down") < 4 {
		t.Errorf("fallbacks with the replica down: unavailable %v, down %v; want at least 1 and 4 in all",
			fallbacks(m, "unavailable"), fallbacks(m, "down"))
	}
	if m["strata_read_replica_up"] != 0 {
		t.Errorf("strata_read_replica_up = %v with the replica down, want 0", m["strata_read_replica_up"])
	}
	if body := readyz(t, a); !strings.Contains(body, "read replica: unavailable") {
		t.Errorf("/readyz with the replica down: %q, want it to say so", body)
	}
	if !strings.Contains(s.srv.stderr.String(), "read replica unavailable") {
		t.Errorf("no warning about the replica in the log:\n%s", s.srv.stderr.String())
	}
}

// readyz returns the body of GET /readyz, failing t unless it answers 200.
func readyz(t *testing.T, addr string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := fetch(t, testHTTP, req)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz: %d %s, want 200", resp.StatusCode, body)
	}
	return string(body)
}
