package app

import (
	"github.com/strata-es/strata/internal/testsupport/testkit"

	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/strata-es/strata/internal/platform/serveproc"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/migrations"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// unreachableURL names a server that cannot answer, so that a command that should have failed
// before connecting fails differently, and quickly, should it try.
const unreachableURL = "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"

func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr []string
	}{
		{"no command", nil, nil, 2, []string{"usage", "serve", "migrate", "bench"}},
		{"unknown command", []string{"frobnicate"}, nil, 2, []string{`"frobnicate"`}},
		{"help", []string{"help"}, nil, 0, []string{"serve", "migrate", "bench"}},
		// Go's flag package prints flags with one dash; both spellings are accepted.
		{"serve help", []string{"serve", "--help"}, nil, 0, []string{"-addr", "-database-url", "DATABASE_URL", "STRATA_ADDR"}},
		{"bad log format flag", []string{"serve", "--addr", "127.0.0.1:0", "--log-format", "xml"},
			map[string]string{"DATABASE_URL": unreachableURL}, 1, []string{"--log-format", "xml"}},
		{"bad log format from environment", []string{"serve", "--addr", "127.0.0.1:0"},
			map[string]string{"DATABASE_URL": unreachableURL, "STRATA_LOG_FORMAT": "xml"}, 1, []string{"--log-format", "xml"}},
		{"unknown flag", []string{"migrate", "--frobnicate"}, map[string]string{"DATABASE_URL": unreachableURL}, 2, []string{"frobnicate"}},
		{"bench without subcommand", []string{"bench"}, nil, 2, []string{"bench append", "bench read", "bench subscribe"}},
		{"bench with unknown subcommand", []string{"bench", "nonesuch"}, nil, 2, []string{"bench append", "bench read", "bench subscribe"}},
		{"extra arguments", []string{"migrate", "now"}, map[string]string{"DATABASE_URL": unreachableURL}, 2, []string{"unexpected arguments: now"}},
		{"bad environment value", []string{"migrate"}, map[string]string{"DATABASE_URL": unreachableURL, "STRATA_DB_MAX_CONNS": "abc"}, 2, []string{"STRATA_DB_MAX_CONNS"}},
		{"bad bench options", []string{"bench", "append", "--writers", "0", "--batch", "0"}, map[string]string{"DATABASE_URL": unreachableURL}, 2, []string{"--writers", "--batch"}},
		{"bad bench read options", []string{"bench", "read", "--orders", "0"}, map[string]string{"DATABASE_URL": unreachableURL}, 2, []string{"--orders"}},
		{"bad bench subscribe options", []string{"bench", "subscribe", "--rate", "0", "--protocol", "sse"}, map[string]string{"DATABASE_URL": unreachableURL}, 2, []string{"--rate", "--protocol"}},
		{"port out of range", []string{"serve", "--addr", "127.0.0.1:99999"}, map[string]string{"DATABASE_URL": unreachableURL}, 1, []string{"--addr", "65535"}},
		// Without authentication, only loopback unless the operator says otherwise.
		{"all interfaces without --insecure", []string{"serve", "--addr", ":8080"}, map[string]string{"DATABASE_URL": unreachableURL}, 1, []string{"no authentication", "--insecure"}},
		{"a LAN address without --insecure", []string{"serve", "--addr", "192.0.2.10:8080"}, map[string]string{"DATABASE_URL": unreachableURL}, 1, []string{"--insecure"}},
		// --help shows the built-in default, not the value the environment supplied
		{"help with environment", []string{"serve", "--help"}, map[string]string{"STRATA_ADDR": "10.9.8.7:1234"}, 0, []string{"(default 127.0.0.1:8080)", "(default info)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := Main(ctx, tc.args, &stdout, &stderr, envOf(tc.env))
			if code != tc.wantCode {
				t.Errorf("strata %s exited %d, want %d; stderr:\n%s", strings.Join(tc.args, " "), code, tc.wantCode, stderr.String())
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not mention %q:\n%s", want, stderr.String())
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

// Run's error names the variable too (TestCommandLine checks what Main prints).
func TestBadEnvironmentValueFailsNamingTheVariable(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"migrate"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			env := envOf(map[string]string{"DATABASE_URL": unreachableURL, "STRATA_DB_MAX_CONNS": "abc"})
			var stdout, stderr bytes.Buffer
			err := Run(ctx, args, &stdout, &stderr, env)
			if err == nil {
				t.Fatal("Run succeeded with STRATA_DB_MAX_CONNS=abc")
			}
			if !strings.Contains(err.Error(), "STRATA_DB_MAX_CONNS") {
				t.Errorf("error %q does not name STRATA_DB_MAX_CONNS", err)
			}
			if code := Main(ctx, args, &stdout, &stderr, env); code == 0 {
				t.Error("Main exited 0 with STRATA_DB_MAX_CONNS=abc")
			}
		})
	}
}

func pending(t *testing.T, url string) bool {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	p, err := migrations.Pending(t.Context(), db)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return p
}

// Sequential, so that its leak check sees only its own goroutines.
func TestMigrateCommand(t *testing.T) {
	url := dbtest.EmptyURL(t)
	if !pending(t, url) {
		t.Fatal("Pending on an empty database = false, want true")
	}
	verifyNoLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	if err := Run(ctx, []string{"migrate"}, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": url})); err != nil {
		t.Fatalf("strata migrate: %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "migrations applied") {
		t.Errorf("stdout = %q, want it to say migrations applied", stdout.String())
	}
	if pending(t, url) {
		t.Error("Pending after strata migrate = true, want false")
	}
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := serveproc.FreeLocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// serveRun is a `strata serve` running in a goroutine of the test.
type serveRun struct {
	addr   string
	stderr *syncBuffer
	cancel context.CancelFunc
	result chan error // Run's error, once it returns

	once sync.Once
	err  error
}

// startServe runs `strata serve` without DATABASE_URL on dir; the test's end stops it.
func startServe(t *testing.T, dir string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{addr: freeAddr(t), stderr: &syncBuffer{}, cancel: cancel, result: make(chan error, 1)}
	args := []string{"serve", "--addr", r.addr, "--data-dir", dir}
	go func() { r.result <- Run(ctx, args, &syncBuffer{}, r.stderr, envOf(nil)) }()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// stop cancels the command's context and returns what Run returned; it fails t when Run takes
// longer than 30s.
func (r *serveRun) stop(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.result:
		case <-time.After(30 * time.Second):
			r.err = errors.New("Run did not return within 30s of its context ending")
			t.Errorf("%v; stderr:\n%s", r.err, r.stderr.String())
		}
	})
	return r.err
}

// waitReady polls /healthz and /readyz until both answer 200, failing t if that takes over 60s
// or serve exits first.
func (r *serveRun) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(60 * time.Second)
	for _, path := range []string{"/healthz", "/readyz"} {
		for {
			status, err := get(t.Context(), client, "http://"+r.addr+path)
			if err == nil && status == http.StatusOK {
				break
			}
			select {
			case runErr := <-r.result:
				r.once.Do(func() { r.err = runErr })
				t.Fatalf("serve exited before GET %s answered 200 (Run: %v); stderr:\n%s", path, runErr, r.stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: no 200 within 60s (last: status %d, %v); stderr:\n%s", path, status, err, r.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func get(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// clusterPort reads the private cluster's port from its postmaster.pid (the fourth line).
func clusterPort(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postgres", "postmaster.pid"))
	if err != nil {
		t.Fatalf("private cluster's pid file: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		t.Fatalf("postmaster.pid has %d lines, want at least 4:\n%s", len(lines), b)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		t.Fatalf("postmaster.pid port line %q: %v", lines[3], err)
	}
	return port
}

func clusterURL(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", port)
}

// withStore runs f on an event store on the private cluster listening on port.
func withStore(t *testing.T, port int, f func(context.Context, *eventstore.Store)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, clusterURL(port))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f(ctx, eventstore.New(pool, eventstore.Options{}))
}

// checkClusterStopped fails t unless the cluster that listened on port is gone.
func checkClusterStopped(t *testing.T, dataDir string, port int) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dataDir, "postgres", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid after serve returned: %v, want it gone (cluster stopped)", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, clusterURL(port))
	if err == nil {
		_ = conn.Close(ctx)
		t.Errorf("connected to the private cluster on port %d after serve returned", port)
	}
}

// Sequential, so that its leak check sees only the goroutines serve starts.
func TestServeWithoutDatabaseURLStartsPrivateClusterAndReusesIt(t *testing.T) {
	dir := dbtest.TempDir(t)
	verifyNoLeaks(t)
	event := eventstore.EventData{Type: "OrderPlaced", Data: json.RawMessage(`{"total": 42}`)}
	var appended eventstore.AppendResult

	first := startServe(t, dir)
	first.waitReady(t)
	port := clusterPort(t, dir)
	withStore(t, port, func(ctx context.Context, store *eventstore.Store) {
		var err error
		appended, err = store.Append(ctx, "order-1", eventstore.NoStream(), []eventstore.EventData{event})
		if err != nil {
			t.Fatalf("append on the private cluster: %v", err)
		}
	})
	if err := first.stop(t); err != nil {
		t.Fatalf("first serve returned %v; stderr:\n%s", err, first.stderr.String())
	}
	checkClusterStopped(t, dir, port)
	for _, want := range []string{"private postgres cluster", "initializing private postgres cluster"} {
		if !strings.Contains(first.stderr.String(), want) {
			t.Errorf("first serve's stderr does not mention %q:\n%s", want, first.stderr.String())
		}
	}

	second := startServe(t, dir)
	second.waitReady(t)
	port = clusterPort(t, dir)
	withStore(t, port, func(ctx context.Context, store *eventstore.Store) {
		slice, err := store.ReadStream(ctx, "order-1", eventstore.ReadStreamOptions{Max: 10})
		if err != nil {
			t.Fatalf("read order-1 after restart: %v", err)
		}
		if len(slice.Events) != 1 || slice.Events[0].ID != appended.Events[0].ID || slice.Events[0].Type != event.Type {
			t.Errorf("order-1 after restart = %+v, want the one event appended before (id %s)", slice.Events, appended.Events[0].ID)
		}
	})
	// the GraphQL endpoint is served, over the same database
	resp, err := testHTTP.Post("http://"+second.addr+"/query", "application/json",
		strings.NewReader(`{"query":"{ stream(id: \"order-1\") { id version } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if want := `{"data":{"stream":{"id":"order-1","version":1}}}`; string(body) != want {
		t.Errorf("POST /query = %s, want %s", body, want)
	}
	if err := second.stop(t); err != nil {
		t.Fatalf("second serve returned %v; stderr:\n%s", err, second.stderr.String())
	}
	checkClusterStopped(t, dir, port)
	if strings.Contains(second.stderr.String(), "initializing private postgres cluster") {
		t.Errorf("second serve initialised the cluster again instead of reusing it; stderr:\n%s", second.stderr.String())
	}
}

// TestServeStopsWhenItsClusterDies: a server whose private PostgreSQL is gone must not go on
// answering as if nothing happened; it exits with an error that says so.
func TestServeStopsWhenItsClusterDies(t *testing.T) {
	dir := dbtest.TempDir(t)
	verifyNoLeaks(t)
	run := startServe(t, dir)
	run.waitReady(t)
	b, err := os.ReadFile(filepath.Join(dir, "postgres", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-run.result:
		if !errors.Is(err, errClusterExited) {
			t.Errorf("serve returned %v, want errClusterExited", err)
		}
		run.once.Do(func() {}) // already returned: nothing for stop to wait for
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still runs 30s after its cluster was killed; stderr:\n%s", run.stderr.String())
	}
}

// The helpers the tests share with benchcmd's.
var (
	verifyNoLeaks = testkit.VerifyNoLeaks
	envOf         = testkit.EnvOf
	buildStrata   = testkit.BuildStrata
)

type syncBuffer = testkit.SyncBuffer
