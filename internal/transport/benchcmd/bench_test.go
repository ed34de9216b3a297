package benchcmd

import (
	"github.com/strata-es/strata/internal/testsupport/testkit"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/transport/cli"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// runStrata runs the command line args, a `strata bench` one, as the strata binary does, with
// the environment getenv: the tests give DATABASE_URL, so no private cluster is started.
func runStrata(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "bench" {
		return fmt.Errorf("not a bench command line: %q", args)
	}
	return Run(ctx, &cli.Env{Stdout: stdout, Stderr: stderr, Getenv: getenv}, givenServer, args[1:])
}

// givenServer is the Postgres of a configuration that names its server (DATABASE_URL).
func givenServer(_ context.Context, cfg config.Config, _ *slog.Logger) (string, func(), error) {
	if cfg.DatabaseURL == "" {
		return "", nil, errors.New("the bench tests run on the server DATABASE_URL names")
	}
	return cfg.DatabaseURL, func() {}, nil
}

// benchResult is the JSON line `strata bench append` prints (docs/benchmarks.md).
type benchResult struct {
	Appends   int64   `json:"appends"`
	Events    int64   `json:"events"`
	Conflicts int64   `json:"conflicts"`
	Errors    int64   `json:"errors"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// scratchName names a scratch database for a benchmark run on the test server, and drops it
// when the test ends if the benchmark did not (only when the command failed).
func scratchName(t *testing.T) (adminURL, name string) {
	t.Helper()
	admin := dbtest.AdminURL(t)
	scratch := fmt.Sprintf("strata_bench_test_%016x", rand.Uint64())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{scratch}.Sanitize()+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	return admin, scratch
}

// runBench runs `strata bench append` with args on a scratch database of its own, checks that it
// printed exactly one JSON line and dropped the scratch database, and returns the line decoded,
// both into a benchResult and field by field.
func runBench(t *testing.T, args ...string) (benchResult, map[string]json.RawMessage) {
	t.Helper()
	return runBenchOf(t, "append", args...)
}

// runBenchOf runs `strata bench kind` on a scratch database and returns its JSON line, checking
// that it has the fields of kind's line.
func runBenchOf(t *testing.T, kind string, args ...string) (benchResult, map[string]json.RawMessage) {
	t.Helper()
	admin, scratch := scratchName(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	var stdout, stderr syncBuffer
	args = append([]string{"bench", kind, "--scratch-db", scratch}, args...)
	if err := runStrata(ctx, args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": admin})); err != nil {
		t.Fatalf("strata %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", scratch).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("scratch database %s still exists after the benchmark", scratch)
	}

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want one JSON line:\n%s", len(lines), stdout.String())
	}
	var res benchResult
	var fields map[string]json.RawMessage
	for _, v := range []any{&res, &fields} {
		if err := json.Unmarshal([]byte(lines[0]), v); err != nil {
			t.Fatalf("stdout %q is not a JSON object: %v", lines[0], err)
		}
	}
	want := []string{"appends", "events", "conflicts", "errors", "p50_ms", "p99_ms"}
	if kind == "read" {
		want = []string{"clients", "seconds", "reads", "reads_per_sec", "errors", "p50_ms", "p99_ms", "max_ms"}
	}
	for _, name := range want {
		if _, ok := fields[name]; !ok {
			t.Errorf("result %s has no field %q", lines[0], name)
		}
	}
	return res, fields
}

// Sequential, so that its leak check sees only its own goroutines; its cases run in parallel.
func TestBenchAppend(t *testing.T) {
	verifyNoLeaks(t)
	t.Run("fresh streams", func(t *testing.T) {
		t.Parallel()
		res, _ := runBench(t, "--writers", "2", "--batch", "3", "--duration", "1s")
		if res.Appends <= 0 {
			t.Errorf("appends = %d, want some", res.Appends)
		}
		if res.Events != res.Appends*3 {
			t.Errorf("events = %d, want appends × batch = %d", res.Events, res.Appends*3)
		}
		if res.Errors != 0 {
			t.Errorf("errors = %d, want 0", res.Errors)
		}
		if res.Conflicts != 0 {
			t.Errorf("conflicts = %d, want 0: every append goes to a fresh stream", res.Conflicts)
		}
		if res.P50Ms <= 0 || res.P99Ms < res.P50Ms {
			t.Errorf("p50 = %vms, p99 = %vms, want 0 < p50 ≤ p99", res.P50Ms, res.P99Ms)
		}
	})
	t.Run("a fixed number of appends", func(t *testing.T) {
		t.Parallel()
		res, _ := runBench(t, "--writers", "3", "--appends", "200")
		if res.Appends != 200 || res.Errors != 0 || res.Conflicts != 0 {
			t.Errorf("%+v, want exactly 200 appends, no errors, no conflicts", res)
		}
	})
	t.Run("hot streams", func(t *testing.T) {
		t.Parallel()
		// Conflicts are likely with four writers on two streams, but not certain.
		res, _ := runBench(t, "--hot", "2", "--writers", "4", "--batch", "1", "--duration", "1s")
		if res.Appends <= 0 {
			t.Errorf("appends = %d, want some", res.Appends)
		}
		if res.Events != res.Appends {
			t.Errorf("events = %d, want appends = %d", res.Events, res.Appends)
		}
		if res.Errors != 0 {
			t.Errorf("errors = %d, want 0 (conflicts are not errors)", res.Errors)
		}
	})
}

// The GraphQL benchmark appends through a real server over HTTP, with group commit on and off.
func TestBenchGraphQL(t *testing.T) {
	bin := buildStrata(t)
	for _, group := range []string{"true", "false"} {
		res, _ := runBenchOf(t, "graphql", "--server-bin", bin, "--writers", "4", "--duration", "1s", "--group-commit="+group, "--log-level", "warn", "--stats-wait", "1s")
		if res.Appends <= 0 || res.Errors != 0 || res.Conflicts != 0 || res.Events != res.Appends {
			t.Errorf("group commit %s: %+v, want appends, no errors, no conflicts", group, res)
		}
	}
	// Two servers on one database, the writers spread over them.
	res, _ := runBenchOf(t, "graphql", "--server-bin", bin, "--replicas", "2", "--writers", "4", "--duration", "1s", "--log-level", "warn", "--stats-wait", "1s")
	if res.Appends <= 0 || res.Errors != 0 || res.Conflicts != 0 || res.Events != res.Appends {
		t.Errorf("two replicas: %+v, want appends, no errors, no conflicts", res)
	}
}

// A run of a fixed number of appends on servers the command started reports what each append
// cost: transactions, the server's CPU time and PostgreSQL's.
func TestBenchGraphQLCosts(t *testing.T) {
	bin := buildStrata(t)
	res, fields := runBenchOf(t, "graphql", "--server-bin", bin, "--writers", "1", "--appends", "50", "--log-level", "warn", "--stats-wait", "2s")
	if res.Appends != 50 || res.Errors != 0 || res.Conflicts != 0 {
		t.Errorf("%+v, want exactly 50 appends, no errors, no conflicts", res)
	}
	for _, name := range []string{"pg_xact_per_append", "server_cpu_us_per_append", "postgres_cpu_us_per_append"} {
		var v float64
		if raw, ok := fields[name]; !ok {
			t.Errorf("no field %q", name)
		} else if err := json.Unmarshal(raw, &v); err != nil || v <= 0 {
			t.Errorf("%s = %s, want a positive number", name, raw)
		}
	}
	var idle float64
	if raw, ok := fields["pg_xact_idle_per_sec"]; !ok {
		t.Error("no field pg_xact_idle_per_sec")
	} else if err := json.Unmarshal(raw, &idle); err != nil || idle < 0 {
		t.Errorf("pg_xact_idle_per_sec = %s, want a number, not negative", raw)
	}
}

// subscribeResult is the JSON line `strata bench subscribe` prints (docs/benchmarks.md).
type subscribeResult struct {
	Subscribers int   `json:"subscribers"`
	Events      int64 `json:"events"`
	Expected    int64 `json:"expected_deliveries"`
	Deliveries  int64 `json:"deliveries"`
	Lost        int64 `json:"lost"`
	Duplicated  int64 `json:"duplicated"`
	OutOfOrder  int64 `json:"out_of_order"`
	Errors      int64 `json:"errors"`
}

// The subscription benchmark, small: it starts a strata server as a child process on a scratch
// database, and every event reaches every subscriber that should have it, exactly once. No
// timing is asserted. Sequential, so that its leak check sees only its own goroutines.
func TestBenchSubscribe(t *testing.T) {
	bin := buildStrata(t)
	verifyNoLeaks(t)
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(proto, func(t *testing.T) {
			admin, scratch := scratchName(t)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			var stdout, stderr syncBuffer
			args := []string{"bench", "subscribe", "--scratch-db", scratch, "--server-bin", bin, "--protocol", proto,
				"--stream-subscribers", "20", "--all-subscribers", "2", "--rate", "50", "--duration", "2s", "--writers", "2"}
			if err := runStrata(ctx, args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": admin})); err != nil {
				t.Fatalf("strata %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("stdout has %d lines, want one JSON line:\n%s", len(lines), stdout.String())
			}
			var res subscribeResult
			var fields map[string]json.RawMessage
			for _, v := range []any{&res, &fields} {
				if err := json.Unmarshal([]byte(lines[0]), v); err != nil {
					t.Fatalf("stdout %q is not a JSON object: %v", lines[0], err)
				}
			}
			for _, name := range []string{"subscribers", "events_per_sec", "deliveries_per_sec", "latency_ms", "lost", "duplicated", "server_memory_mb"} {
				if _, ok := fields[name]; !ok {
					t.Errorf("result %s has no field %q", lines[0], name)
				}
			}
			var latency map[string]float64
			if err := json.Unmarshal(fields["latency_ms"], &latency); err != nil {
				t.Errorf("latency_ms %s: %v", fields["latency_ms"], err)
			}
			for _, q := range []string{"p50", "p99", "max"} {
				if _, ok := latency[q]; !ok {
					t.Errorf("latency_ms %s has no %q", fields["latency_ms"], q)
				}
			}
			if string(fields["server_memory_mb"]) == "null" {
				t.Errorf("server_memory_mb is null; the bench started the server, so it knows its memory")
			}
			var cpu float64
			if raw, ok := fields["server_cpu_us_per_delivery"]; !ok || json.Unmarshal(raw, &cpu) != nil || cpu <= 0 {
				t.Errorf("server_cpu_us_per_delivery = %s, want a positive number: the bench started the server", raw)
			}
			if res.Subscribers != 22 {
				t.Errorf("subscribers = %d, want 22", res.Subscribers)
			}
			if res.Events != 100 {
				t.Errorf("events = %d, want rate × duration = 100", res.Events)
			}
			// Each event is on one stream subscriber's stream and in the two category subscribers' feeds.
			if res.Expected != 3*res.Events || res.Deliveries != res.Expected {
				t.Errorf("deliveries = %d, expected = %d, want both 3 × %d events", res.Deliveries, res.Expected, res.Events)
			}
			if res.Lost != 0 || res.Duplicated != 0 || res.OutOfOrder != 0 || res.Errors != 0 {
				t.Errorf("lost %d, duplicated %d, out of order %d, errors %d: want all 0", res.Lost, res.Duplicated, res.OutOfOrder, res.Errors)
			}
			conn, err := pgx.Connect(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
			var exists bool
			if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", scratch).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists {
				t.Errorf("scratch database %s still exists after the benchmark", scratch)
			}
		})
	}
}

// The helpers the tests share with internal/app's.
var (
	verifyNoLeaks = testkit.VerifyNoLeaks
	envOf         = testkit.EnvOf
	buildStrata   = testkit.BuildStrata
)

type syncBuffer = testkit.SyncBuffer
