package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

type statsBucket struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Total  int       `json:"total"`
	Counts []struct {
		Type  string `json:"type"`
		Count int    `json:"count"`
	} `json:"counts"`
}

type eventStats struct {
	Total   int           `json:"total"`
	Buckets []statsBucket `json:"buckets"`
}

const eventStatsQuery = `query($from: Time!, $to: Time!, $interval: StatsInterval!, $category: String, $types: [String!]) {
  eventStats(from: $from, to: $to, interval: $interval, category: $category, types: $types) {
    total buckets { start end total counts { type count } }
  }
}`

type loggedEvent struct {
	StreamID   string    `json:"streamId"`
	Type       string    `json:"type"`
	RecordedAt time.Time `json:"recordedAt"`
}

// allEventsOf reads every event through allEvents, page by page.
func allEventsOf(t *testing.T, url string) []loggedEvent {
	t.Helper()
	var out []loggedEvent
	var after *string
	for {
		r := post(t, url, `query($after: String) { allEvents(first: 50, after: $after) { edges { node { streamId type recordedAt } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after})
		if len(r.Errors) > 0 {
			t.Fatalf("allEvents: %+v", r.Errors)
		}
		var page struct {
			AllEvents struct {
				Edges []struct {
					Node loggedEvent `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					HasNextPage bool    `json:"hasNextPage"`
					EndCursor   *string `json:"endCursor"`
				} `json:"pageInfo"`
			} `json:"allEvents"`
		}
		if err := json.Unmarshal(r.Data, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.AllEvents.Edges {
			out = append(out, e.Node)
		}
		if !page.AllEvents.PageInfo.HasNextPage {
			return out
		}
		after = page.AllEvents.PageInfo.EndCursor
	}
}

// waitForEvents waits until allEvents shows n events, and returns them.
func waitForEvents(t *testing.T, url string, n int) []loggedEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		events := allEventsOf(t, url)
		if len(events) == n {
			return events
		}
		if len(events) > n || time.Now().After(deadline) {
			t.Fatalf("allEvents shows %d events, want %d", len(events), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectStats counts events as a person would from the list allEvents gives: the bucket of an
// event is its time truncated to the interval. time.Truncate counts from January 1 of year 1,
// UTC, a Monday, so whole days start at UTC midnight and weeks on Mondays.
func expectStats(events []loggedEvent, from, to time.Time, interval time.Duration, category string, types []string) eventStats {
	var out eventStats
	// Times are stored to the microsecond, and the bounds are taken up to the next one.
	from, to = from.Add(time.Microsecond-1).Truncate(time.Microsecond), to.Add(time.Microsecond-1).Truncate(time.Microsecond)
	index := map[time.Time]int{}
	for start := from.Truncate(interval); start.Before(to); start = start.Add(interval) {
		b := statsBucket{Start: start, End: start.Add(interval)}
		if b.Start.Before(from) {
			b.Start = from
		}
		if b.End.After(to) {
			b.End = to
		}
		index[start] = len(out.Buckets)
		out.Buckets = append(out.Buckets, b)
	}
	counts := make([]map[string]int, len(out.Buckets))
	for _, e := range events {
		cat, _, _ := strings.Cut(e.StreamID, "-")
		if e.RecordedAt.Before(from) || !e.RecordedAt.Before(to) || (category != "" && cat != category) {
			continue
		}
		if len(types) > 0 && !contains(types, e.Type) {
			continue
		}
		i := index[e.RecordedAt.Truncate(interval)]
		if counts[i] == nil {
			counts[i] = map[string]int{}
		}
		counts[i][e.Type]++
		out.Buckets[i].Total++
		out.Total++
	}
	for i, c := range counts {
		names := make([]string, 0, len(c))
		for name := range c {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			out.Buckets[i].Counts = append(out.Buckets[i].Counts, struct {
				Type  string `json:"type"`
				Count int    `json:"count"`
			}{name, c[name]})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEventStatsMatchCountsOfAllEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	store := eventstore.New(pool, eventstore.Options{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store}, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	// A Monday; events at bucket edges (the first and last nanosecond... microsecond, as
	// PostgreSQL stores them, of minutes, hours, days and weeks) and spread over three weeks.
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	edges := []time.Duration{
		0, time.Microsecond, time.Minute - time.Microsecond, time.Minute, time.Hour - time.Microsecond, time.Hour,
		24*time.Hour - time.Microsecond, 24 * time.Hour, 7*24*time.Hour - time.Microsecond, 7 * 24 * time.Hour,
	}
	streams := []string{"alpha-1", "alpha-2", "beta-1", "beta-2", "gamma"}
	types := []string{"Opened", "Changed", "Closed"}
	n := 0
	for i := range 120 {
		stream := streams[i%len(streams)]
		res, err := store.Append(ctx, stream, eventstore.Any(), []eventstore.EventData{{Type: types[i*7%len(types)], Data: json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		at := monday.Add(time.Duration(i*4561) * time.Minute % (21 * 24 * time.Hour))
		if i < len(edges)*2 {
			at = monday.Add(edges[i%len(edges)])
			if i >= len(edges) {
				at = monday.Add(14 * 24 * time.Hour).Add(edges[i%len(edges)])
			}
		}
		if _, err := pool.Exec(ctx, `UPDATE events SET recorded_at = $3 WHERE stream_id = $1 AND version = $2`, stream, res.NextExpectedVersion, at); err != nil {
			t.Fatal(err)
		}
		n++
	}
	// A transaction elsewhere in the cluster may hold the horizon back for a moment.
	events := waitForEvents(t, srv.URL, n)

	intervals := map[string]time.Duration{"MINUTE": time.Minute, "HOUR": time.Hour, "DAY": 24 * time.Hour, "WEEK": 7 * 24 * time.Hour}
	cases := []struct {
		interval string
		from, to time.Time
		category string
		types    []string
	}{
		{"WEEK", monday.Add(-7 * 24 * time.Hour), monday.Add(28 * 24 * time.Hour), "", nil},
		{"WEEK", monday.Add(3 * time.Hour), monday.Add(17*24*time.Hour + time.Minute), "", nil},
		{"DAY", monday, monday.Add(21 * 24 * time.Hour), "", nil},
		{"DAY", monday.Add(-time.Microsecond), monday.Add(8*24*time.Hour + time.Microsecond), "alpha", nil},
		{"DAY", monday, monday.Add(21 * 24 * time.Hour), "beta", []string{"Opened", "Closed"}},
		{"HOUR", monday, monday.Add(3 * 24 * time.Hour), "", nil},
		{"HOUR", monday.Add(30 * time.Minute), monday.Add(24*time.Hour + 30*time.Minute), "gamma", nil},
		{"HOUR", monday.Add(14 * 24 * time.Hour), monday.Add(16 * 24 * time.Hour), "", []string{"Changed"}},
		{"MINUTE", monday, monday.Add(2 * time.Hour), "", nil},
		{"MINUTE", monday.Add(time.Minute - time.Microsecond), monday.Add(time.Minute + time.Microsecond), "", nil},
		{"MINUTE", monday.Add(-time.Hour), monday, "", nil}, // only empty buckets
		// Bounds with nanoseconds around an event a microsecond before a minute's end.
		{"MINUTE", monday.Add(time.Minute - time.Microsecond - 500), monday.Add(time.Minute - time.Microsecond + 500), "", nil},
		{"HOUR", monday.Add(time.Minute - time.Microsecond + 1), monday.Add(time.Hour + 1), "", nil},
		{"DAY", monday, monday.Add(21 * 24 * time.Hour), "nobody", nil},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s %s..%s %q %v", c.interval, c.from.Format(time.RFC3339Nano), c.to.Format(time.RFC3339Nano), c.category, c.types)
		t.Run(name, func(t *testing.T) {
			vars := map[string]any{"from": c.from, "to": c.to, "interval": c.interval, "types": c.types}
			if c.category != "" {
				vars["category"] = c.category
			}
			r := post(t, srv.URL, eventStatsQuery, vars)
			if len(r.Errors) > 0 {
				t.Fatalf("errors: %+v", r.Errors)
			}
			var got struct {
				EventStats eventStats `json:"eventStats"`
			}
			if err := json.Unmarshal(r.Data, &got); err != nil {
				t.Fatal(err)
			}
			want := expectStats(events, c.from, c.to, intervals[c.interval], c.category, c.types)
			if !reflect.DeepEqual(normal(got.EventStats), normal(want)) {
				t.Errorf("eventStats\n got %+v\nwant %+v", got.EventStats, want)
			}
		})
	}
	t.Run("the cases count events", func(t *testing.T) {
		if w := expectStats(events, monday, monday.Add(22*24*time.Hour), 24*time.Hour, "", nil); w.Total != n {
			t.Errorf("the test's own count is %d of %d events", w.Total, n)
		}
	})

	t.Run("only what allEvents shows: nothing past an open transaction", func(t *testing.T) {
		from, to := monday.Add(-365*24*time.Hour), monday.Add(365*24*time.Hour)
		total := func() int {
			r := post(t, srv.URL, eventStatsQuery, map[string]any{"from": from, "to": to, "interval": "WEEK"})
			var got struct {
				EventStats eventStats `json:"eventStats"`
			}
			if err := json.Unmarshal(r.Data, &got); err != nil || len(r.Errors) > 0 {
				t.Fatalf("%v %+v", err, r.Errors)
			}
			return got.EventStats.Total
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, "late-1", eventstore.Any(), []eventstore.EventData{{Type: "Late", Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE events SET recorded_at = $1 WHERE stream_id = 'late-1'`, monday); err != nil {
			t.Fatal(err)
		}
		if got, shown := total(), len(allEventsOf(t, srv.URL)); got != n || shown != n {
			t.Errorf("behind an open transaction: eventStats counts %d, allEvents shows %d; want %d for both", got, shown, n)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		waitForEvents(t, srv.URL, n+1)
		if got := total(); got != n+1 {
			t.Errorf("after it ended: eventStats counts %d; want %d, as allEvents shows", got, n+1)
		}
	})
}

// normal makes nil and empty count lists equal.
func normal(s eventStats) eventStats {
	for i := range s.Buckets {
		if len(s.Buckets[i].Counts) == 0 {
			s.Buckets[i].Counts = nil
		}
	}
	return s
}

func TestEventStatsRefusesBadRanges(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, 0)
	at := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		vars     map[string]any
		wantText string
	}{
		{"empty range", map[string]any{"from": at, "to": at, "interval": "HOUR"}, "is not after from"},
		{"backwards", map[string]any{"from": at, "to": at.Add(-time.Hour), "interval": "DAY"}, "is not after from"},
		{"too many minutes", map[string]any{"from": at, "to": at.Add(48 * time.Hour), "interval": "MINUTE"}, "spans 2880 minutes; at most 1000"},
		{"too many hours", map[string]any{"from": at, "to": at.Add(1000*time.Hour + time.Second), "interval": "HOUR"}, "spans 1001 hours; at most 1000"},
		{"too many days", map[string]any{"from": at, "to": at.AddDate(3, 0, 0), "interval": "DAY"}, "days; at most 1000"},
		{"too long ago", map[string]any{"from": "1800-01-01T00:00:00Z", "to": at, "interval": "WEEK"}, "between the years 1900 and 2200"},
		{"bad category", map[string]any{"from": at, "to": at.Add(time.Hour), "interval": "HOUR", "category": strings.Repeat("c", 300)}, "category"},
		{"bad type", map[string]any{"from": at, "to": at.Add(time.Hour), "interval": "HOUR", "types": []string{""}}, "types[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, msg := gqlErr(t, post(t, srv.URL, eventStatsQuery, c.vars))
			if code != graph.CodeBadUserInput || !strings.Contains(msg, c.wantText) {
				t.Errorf("code %s, message %q; want %s with %q", code, msg, graph.CodeBadUserInput, c.wantText)
			}
		})
	}
	t.Run("exactly 1000 buckets are fine", func(t *testing.T) {
		r := post(t, srv.URL, eventStatsQuery, map[string]any{"from": at, "to": at.Add(1000 * time.Hour), "interval": "HOUR"})
		var got struct {
			EventStats eventStats `json:"eventStats"`
		}
		if err := json.Unmarshal(r.Data, &got); err != nil || len(r.Errors) > 0 || len(got.EventStats.Buckets) != 1000 {
			t.Errorf("errors %+v, %d buckets; want 1000", r.Errors, len(got.EventStats.Buckets))
		}
	})
}

// The stats fields cost their buckets times their selection, so the complexity limit bounds
// the size of their answer before anything is counted.
func TestStatsComplexityGrowsWithBuckets(t *testing.T) {
	t.Parallel()
	store := eventstore.New(dbtest.Pool(t), eventstore.Options{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Store: store, Limits: graph.Limits{MaxComplexity: 1000}}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	at := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	// Each bucket asks for start, end, total and counts { type count }: 6, plus 1 for buckets.
	for _, c := range []struct {
		hours int
		code  string
	}{{100, ""}, {200, "COMPLEXITY_LIMIT_EXCEEDED"}} {
		r := post(t, srv.URL, eventStatsQuery, map[string]any{"from": at, "to": at.Add(time.Duration(c.hours) * time.Hour), "interval": "HOUR"})
		got := ""
		if len(r.Errors) > 0 {
			got, _ = r.Errors[0].Extensions["code"].(string)
		}
		if got != c.code {
			t.Errorf("%d hourly buckets: code %q (%+v), want %q", c.hours, got, r.Errors, c.code)
		}
	}
}
