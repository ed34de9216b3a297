package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/advisory"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// SIGTERM stops the server gracefully: it stops accepting at once, closes WebSockets with
// 1001 (going away), lets an append that is in flight finish and answers it, then exits 0.
// Its JSON logs carry a line per request and per operation, and no event payload.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	bin := buildStrata(t)
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 4)
	ctx := t.Context()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--log-format", "json", "--shutdown-timeout", "30s")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited delivers Wait's result once; waited closes when the process is gone, for the
	// cleanup, which may run after a select has taken the result.
	exited, waited := make(chan error, 1), make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
	})
	waitHTTP(t, "http://"+addr+"/readyz", exited, &logs)

	sub, err := wsclient.Dial(ctx, "ws://"+addr+"/query", wsclient.TransportWS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	if err := sub.Subscribe("1", `subscription Watch { events { id } }`, nil); err != nil {
		t.Fatal(err)
	}

	// Hold the stream's append lock, so an append to it stays in flight for as long as the test
	// wants.
	release := holdStreamLock(t, pool, "held-1")
	eventID := uuid.NewString()
	type answer struct {
		status int
		body   string
		err    error
	}
	inFlight := make(chan answer, 1)
	go func() {
		body, _ := json.Marshal(map[string]any{
			"operationName": "HeldAppend",
			"query":         `mutation HeldAppend($id: ID!) { appendEvents(streamId: "held-1", events: [{id: $id, type: "Noted", data: {note: "payload-secret-123"}}]) { position } }`,
			"variables":     map[string]any{"id": eventID},
		})
		resp, err := testHTTP.Post("http://"+addr+"/query", "application/json", bytes.NewReader(body))
		if err != nil {
			inFlight <- answer{err: err}
			return
		}
		raw, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		inFlight <- answer{status: resp.StatusCode, body: string(raw), err: err}
	}()
	waitFor(t, "the append to wait on the held lock", func() bool {
		return appendsWaiting(t, pool) == 1
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The subscription is told the server is going away.
	var closed *wsclient.ErrClosed
	for {
		_, err := sub.Next(20 * time.Second)
		if errors.As(err, &closed) {
			break
		}
		if err != nil {
			t.Fatalf("waiting for the subscription's close: %v", err)
		}
	}
	if closed.Code != 1001 {
		t.Errorf("subscription closed with %d %q, want 1001", closed.Code, closed.Text)
	}
	// New connections are refused while the append is still in flight.
	waitFor(t, "the listener to close", func() bool {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		_, err := get(ctx, c, "http://"+addr+"/healthz")
		return err != nil
	})
	select {
	case err := <-exited:
		t.Fatalf("the server exited (%v) with an append in flight; logs:\n%s", err, logs.String())
	case a := <-inFlight:
		t.Fatalf("the held append was answered before its lock was released: %+v", a)
	default:
	}

	// Release the lock: the append finishes and is answered, then the server exits 0.
	release()
	select {
	case a := <-inFlight:
		if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"position"`) || strings.Contains(a.body, `"errors"`) {
			t.Errorf("the append in flight at SIGTERM: %+v, want its success", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the append in flight was never answered")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0; logs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not exit within 30s of the append's answer; logs:\n%s", logs.String())
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_id = $1`, eventID).Scan(&n); err != nil || n != 1 {
		t.Errorf("the answered append is stored %d times (%v), want once", n, err)
	}

	// The logs: JSON, one line per request and operation, with request ids; no payload.
	out := logs.String()
	if strings.Contains(out, "payload-secret-123") {
		t.Error("an event payload reached the logs")
	}
	var sawOp, sawSub, sawStop bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("a log line is not JSON: %q", sc.Text())
			continue
		}
		switch {
		case line["msg"] == "graphql operation" && line["operation"] == "HeldAppend":
			sawOp = line["outcome"] == "ok" && line["type"] == "mutation" && line["request_id"] != "" && line["duration"] != nil
		case line["msg"] == "graphql operation" && line["operation"] == "Watch":
			sawSub = line["type"] == "subscription"
		case line["msg"] == "http stopped":
			sawStop = true
		}
		if line["level"] == "ERROR" {
			t.Errorf("an error was logged during the run: %s", sc.Text())
		}
	}
	if !sawOp || !sawSub || !sawStop {
		t.Errorf("logs lack the append's operation line (%v), the subscription's (%v) or the stop (%v):\n%s", sawOp, sawSub, sawStop, out)
	}
}

// waitHTTP polls url until it answers 200, failing t when the process exits first or 60s pass.
func waitHTTP(t *testing.T, url string, exited <-chan error, logs *syncBuffer) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if status, err := get(t.Context(), client, url); err == nil && status == http.StatusOK {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("the server exited (%v) before %s answered; logs:\n%s", err, url, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 200 within 60s; logs:\n%s", url, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing t after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdStreamLock takes the append lock of stream (the store's advisory lock) in a transaction of
// pool's, so that appends to the stream wait; release commits it and lets them go on. The test's
// end rolls it back if it was not released.
func holdStreamLock(t *testing.T, pool *pgxpool.Pool, stream string) (release func()) {
	t.Helper()
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+advisory.Stream+`, hashtext($1))`, stream); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// appendsWaiting counts the appends waiting on a stream lock in pool's database (pg_locks
// shows every database's locks, and other tests and servers append on the same cluster).
func appendsWaiting(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = `+advisory.Stream+`
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
