package benchcmd

import (
	"encoding/json"
	"strings"
	"testing"
)

// bench replay runs end to end on a scratch database and reports every case.
func TestBenchReplay(t *testing.T) {
	admin, scratch := scratchName(t)
	var stdout, stderr syncBuffer
	args := []string{"bench", "replay", "--scratch-db", scratch, "--events", "2500", "--rounds", "2", "--every", "100"}
	if err := runStrata(t.Context(), args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": admin})); err != nil {
		t.Fatalf("strata %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var res map[string]float64
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &res); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	for _, k := range []string{"latest_full_replay_ms", "latest_with_snapshots_ms", "middle_full_replay_ms", "middle_with_snapshots_ms", "latest_ratio", "middle_ratio"} {
		if res[k] <= 0 {
			t.Errorf("%s = %v in %s", k, res[k], stdout.String())
		}
	}
	if res["events"] != 2500 || res["middle_version"] != 1250 {
		t.Errorf("result %s", stdout.String())
	}
}

// bench project writes orders, rebuilds the orders projection over them and reports the rate;
// it checks itself that every order came out shipped.
func TestBenchProject(t *testing.T) {
	admin, scratch := scratchName(t)
	var stdout, stderr syncBuffer
	args := []string{"bench", "project", "--scratch-db", scratch, "--orders", "300"}
	if err := runStrata(t.Context(), args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": admin})); err != nil {
		t.Fatalf("strata %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var res map[string]float64
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &res); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	if res["orders"] != 300 || res["events"] != 900 || res["projected_events_per_sec"] <= 0 || res["project_seconds"] <= 0 {
		t.Errorf("result %s", stdout.String())
	}
}

// bench stats fills a log, times eventStats' query over it and checks its own counts.
func TestBenchStats(t *testing.T) {
	admin, scratch := scratchName(t)
	var stdout, stderr syncBuffer
	args := []string{"bench", "stats", "--scratch-db", scratch, "--events", "5000", "--days", "3", "--query-days", "2", "--rounds", "1"}
	if err := runStrata(t.Context(), args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": admin})); err != nil {
		t.Fatalf("strata %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &res); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	for _, name := range []string{"day_ms_median", "hour_ms_median", "day_category_ms_median", "hour_category_ms_median", "index_build_seconds"} {
		if v, ok := res[name].(float64); !ok || v <= 0 {
			t.Errorf("result has %s = %v; stdout %s", name, res[name], stdout.String())
		}
	}
	if q, ok := res["query_events"].(float64); !ok || q < 3000 || q > 3400 {
		t.Errorf("the last 2 of 3 days hold %v of 5000 events", res["query_events"])
	}
	if res["events"] != float64(5000) || !strings.Contains(stderr.String(), "5000 of 5000 events inserted") || !strings.Contains(stderr.String(), "HashAggregate") {
		t.Errorf("stdout %s\nstderr %s", stdout.String(), stderr.String())
	}
}
