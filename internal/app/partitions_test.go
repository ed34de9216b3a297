package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// The server makes partitions ahead as appends cross partition boundaries; `strata archive`
// takes the old ones away from allEvents and `strata restore` brings back exactly what was there.
func TestPartitionsArchiveRestoreThroughTheCommandLine(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 4)
	ctx := t.Context()
	// The migration's partitions are empty and a million positions wide: make room for tiny ones.
	rows, err := pool.Query(ctx, `SELECT relname FROM pg_class WHERE relname ~ '^events_p[0-9]' AND relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := pool.Exec(ctx, "DROP TABLE "+pgx.Identifier{n}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	env := envOf(map[string]string{"DATABASE_URL": url, "STRATA_PARTITION_SIZE": "10", "STRATA_LOG_LEVEL": "warn"})
	cli := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(ctx, args, &stdout, &stderr, env); code != 0 {
			t.Fatalf("strata %s exited %d; stderr:\n%s", strings.Join(args, " "), code, stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	srvCtx, stop := context.WithCancel(context.Background())
	addr := freeAddr(t)
	srvErr := make(chan error, 1)
	srvLog := &syncBuffer{}
	go func() { srvErr <- Run(srvCtx, []string{"serve", "--addr", addr}, &syncBuffer{}, srvLog, env) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-srvErr:
			if err != nil {
				t.Errorf("serve: %v; log:\n%s", err, srvLog)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30 s")
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	waitFor(t, "the server to answer", func() bool {
		code, err := get(ctx, client, "http://"+addr+"/readyz")
		return err == nil && code == http.StatusOK
	})

	// 24 events, three at a time: across [0, 10), [10, 20) and into [20, 30), all made at start-up.
	for i := range 8 {
		events := []map[string]any{}
		for j := range 3 {
			events = append(events, map[string]any{"type": "Noted", "data": map[string]any{"n": i*3 + j, "s": fmt.Sprintf("é \"%d\"", j)}})
		}
		r, err := crashPost(ctx, client, addr, `mutation($s: String!, $e: [EventInput!]!) { appendEvents(streamId: $s, events: $e) { nextExpectedVersion } }`,
			map[string]any{"s": fmt.Sprintf("note-%d", i%3), "e": events})
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("append %d: %v %+v; server log:\n%s", i, err, r.Errors, srvLog)
		}
	}
	// The server's loop keeps two partitions past the next position (25): [30, 40) and [40, 50).
	waitFor(t, "the server to make partitions ahead", func() bool {
		var ok bool
		_ = pool.QueryRow(ctx, `SELECT to_regclass('events_p0000000000000000040_0000000000000000050') IS NOT NULL`).Scan(&ok)
		return ok
	})

	allEvents := func() []json.RawMessage {
		t.Helper()
		r, err := crashPost(ctx, client, addr, `{ allEvents(first: 1000) { edges { node { id streamId version position type schemaVersion data metadata recordedAt } } } }`, nil)
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("allEvents: %v %+v", err, r.Errors)
		}
		var conn struct {
			Edges []struct{ Node json.RawMessage }
		}
		if err := json.Unmarshal(r.Data["allEvents"], &conn); err != nil {
			t.Fatal(err)
		}
		out := make([]json.RawMessage, len(conn.Edges))
		for i, e := range conn.Edges {
			out[i] = e.Node
		}
		return out
	}
	var before []json.RawMessage
	waitFor(t, "every event to be readable", func() bool { before = allEvents(); return len(before) == 24 })

	list, _ := cli("partitions", "list")
	for _, want := range []string{"events_p0000000000000000000_0000000000000000010", "attached", "next position: 25"} {
		if !strings.Contains(list, want) {
			t.Fatalf("partitions list does not show %q:\n%s", want, list)
		}
	}

	file := filepath.Join(t.TempDir(), "old.ndjson.gz")
	out, errOut := cli("archive", "--before", "20", "--to", file)
	if !strings.Contains(out, "archived 19 events of 2 partitions") || !strings.Contains(errOut, "detached partition") {
		t.Fatalf("archive printed:\n%s\nstderr:\n%s", out, errOut)
	}
	var after []json.RawMessage
	waitFor(t, "allEvents without the archived events", func() bool { after = allEvents(); return len(after) == 5 })
	if !reflect.DeepEqual(after, before[19:]) {
		t.Fatalf("after the archive allEvents returned\n%s\nwant the last 5 of\n%s", after, before)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE position < 20`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("events holds %d rows below position 20 after the archive (%v)", left, err)
	}

	out, _ = cli("restore", "--from", file)
	if !strings.Contains(out, "restored 19 events") {
		t.Fatalf("restore printed:\n%s", out)
	}
	if again := allEvents(); !reflect.DeepEqual(again, before) {
		t.Fatalf("after the restore allEvents returned\n%s\nbefore the archive\n%s", again, before)
	}

	// A second restore of the same file is refused, naming the partition in the way.
	var stdout, stderr bytes.Buffer
	if code := Main(ctx, []string{"restore", "--from", file}, &stdout, &stderr, env); code != 1 || !strings.Contains(stderr.String(), "overlaps partition events_p0000000000000000000_0000000000000000010") {
		t.Fatalf("second restore exited %d; stderr:\n%s", code, stderr.String())
	}
}

// Bad command lines of the partition commands are refused before anything connects.
func TestPartitionCommandLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"partitions"}, "strata partitions list"},
		{[]string{"partitions", "drop"}, `unknown subcommand "drop"`},
		{[]string{"partitions", "create", "--count", "-1"}, "--count"},
		{[]string{"archive", "--to", "x.gz"}, "usage: strata archive"},
		{[]string{"archive", "--before", "yesterday", "--to", "x.gz"}, "neither a position number"},
		{[]string{"restore"}, "usage: strata restore"},
		{[]string{"serve", "--partition-size", "0"}, "--partition-size must be at least 1"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), tc.args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": unreachableURL}))
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("strata %s exited %d; stderr does not mention %q:\n%s", strings.Join(tc.args, " "), code, tc.want, stderr.String())
			}
		})
	}
}
