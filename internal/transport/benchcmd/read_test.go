package benchcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/transport/cli"
)

// The read benchmark creates orders through a real server's GraphQL API, reads them back with
// order(id) over HTTP, exactly as many reads as --appends says, and reports what each read cost.
func TestBenchRead(t *testing.T) {
	bin := buildStrata(t)
	_, fields := runBenchOf(t, "read", "--server-bin", bin, "--writers", "4", "--appends", "200", "--orders", "20", "--log-level", "warn", "--stats-wait", "1s")
	var res struct {
		Clients     int     `json:"clients"`
		Reads       int64   `json:"reads"`
		ReadsPerSec float64 `json:"reads_per_sec"`
		Errors      int64   `json:"errors"`
		P50Ms       float64 `json:"p50_ms"`
		P99Ms       float64 `json:"p99_ms"`
		MaxMs       float64 `json:"max_ms"`
	}
	line, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatal(err)
	}
	if res.Clients != 4 || res.Reads != 200 || res.Errors != 0 {
		t.Errorf("%s: want 4 clients, exactly 200 reads, no errors", line)
	}
	if res.ReadsPerSec <= 0 || res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.MaxMs < res.P99Ms {
		t.Errorf("%s: want reads_per_sec > 0 and 0 < p50 ≤ p99 ≤ max", line)
	}
	for _, name := range []string{"pg_xact_per_read", "server_cpu_us_per_read", "postgres_cpu_us_per_read"} {
		var v float64
		if raw, ok := fields[name]; !ok {
			t.Errorf("no field %q in %s", name, line)
		} else if err := json.Unmarshal(raw, &v); err != nil || v <= 0 {
			t.Errorf("%s = %s, want a positive number", name, raw)
		}
	}
	for _, name := range []string{"appends", "pg_xact_per_append"} {
		if _, ok := fields[name]; ok {
			t.Errorf("field %q in a read benchmark's line %s", name, line)
		}
	}
}

// Bad flags are usage errors, found before any server or database is touched.
func TestBenchReadUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--orders", "0"},
		{"--orders", "-5"},
		{"--writers", "0"},
		{"--appends", "-1"},
		{"--duration", "0s"},
		{"--stats-wait", "-1s"},
		{"--no-such-flag"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		var stdout, stderr bytes.Buffer
		// No DATABASE_URL: reaching PostgreSQL would be an error other than a usage one.
		err := runStrata(ctx, append([]string{"bench", "read"}, args...), &stdout, &stderr, envOf(nil))
		cancel()
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("bench read %s: %v, want a usage error", strings.Join(args, " "), err)
		}
		if stdout.Len() != 0 {
			t.Errorf("bench read %s printed %q on stdout, want nothing", strings.Join(args, " "), stdout.String())
		}
	}
}
