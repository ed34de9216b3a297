package benchcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/transport/cli"
)

// benchStatsCmd runs `strata bench stats`: --events events spread evenly over the last --days
// days are inserted into a scratch database with SQL (in four categories and ten types; the
// index eventStats reads is built after them, timed, as a migration would build it on an
// existing log), then eventStats' query is timed over the last --query-days days by day and by
// hour, with and without a category. It checks its own counts, prints the query plan on stderr, and one
// JSON line of timings on stdout.
func benchStatsCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	var (
		events, days, rounds, queryDays int
		scratch                         string
	)
	cfg, _, err := cli.Parse(env, "bench stats", args, func(_ *config.Config, f *config.FlagSet) {
		f.Int(&events, "events", "STRATA_BENCH_EVENTS", 1_000_000, "events inserted, spread evenly over --days")
		f.Int(&days, "days", "STRATA_BENCH_DAYS", 30, "days of history the events cover, up to now")
		f.Int(&queryDays, "query-days", "STRATA_BENCH_QUERY_DAYS", 30, "days the timed queries cover: the last ones, at most --days")
		f.Int(&rounds, "rounds", "STRATA_BENCH_ROUNDS", 5, "times each query is timed; the median and the slowest are reported")
		f.String(&scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "database made afresh on the server for the run and dropped after it")
	})
	if err != nil {
		return err
	}
	switch {
	case events < 1 || events > 100_000_000:
		return fmt.Errorf("%w: --events must be 1 to 100000000", cli.ErrUsage)
	case days < 1 || days > 900:
		return fmt.Errorf("%w: --days must be 1 to 900", cli.ErrUsage)
	case queryDays < 1 || queryDays > days:
		return fmt.Errorf("%w: --query-days must be 1 to --days (%d)", cli.ErrUsage, days)
	case rounds < 1:
		return fmt.Errorf("%w: --rounds must be at least 1", cli.ErrUsage)
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	pool, cleanup, err := scratchPool(ctx, pg, cfg, logger, scratch, nil)
	if err != nil {
		return err
	}
	defer cleanup()
	store := eventstore.New(pool, eventstore.Options{})

	to := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	started := time.Now()
	if err := fillStatsEvents(ctx, env, pool, events, from, to); err != nil {
		return err
	}
	filled := time.Since(started)
	started = time.Now()
	if _, err := pool.Exec(ctx, pgsql.BenchStatsIndex); err != nil {
		return fmt.Errorf("build the index: %w", err)
	}
	indexed := time.Since(started)
	// A log that has been written for a while has been vacuumed: the index-only scan needs
	// the visibility map that vacuum sets.
	if _, err := pool.Exec(ctx, pgsql.BenchVacuum); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}

	if err := waitStatsVisible(ctx, env, store, from, to, events); err != nil {
		return err
	}

	out := map[string]any{"events": events, "days": days, "query_days": queryDays, "fill_seconds": filled.Seconds(), "index_build_seconds": indexed.Seconds()}
	// The timed range, and its counts by a plain count(*), to check the statistics against.
	qfrom := to.Add(-time.Duration(queryDays) * 24 * time.Hour)
	var inRange, ofOrders int64
	if err := pool.QueryRow(ctx, pgsql.BenchStatsCount, qfrom, to).Scan(&inRange, &ofOrders); err != nil {
		return fmt.Errorf("count events: %w", err)
	}
	out["query_events"] = inRange
	for _, c := range []struct {
		name     string
		interval time.Duration
		category string
		want     int64
	}{
		{"day", 24 * time.Hour, "", inRange},
		{"hour", time.Hour, "", inRange},
		{"day_category", 24 * time.Hour, "order", ofOrders},
		{"hour_category", time.Hour, "order", ofOrders},
	} {
		opts := eventstore.StatsOptions{From: qfrom, To: to, Interval: c.interval, Category: c.category}
		took := make([]time.Duration, rounds)
		for i := range rounds {
			t0 := time.Now()
			buckets, err := store.Stats(ctx, opts)
			took[i] = time.Since(t0)
			if err != nil {
				return fmt.Errorf("stats %s: %w", c.name, err)
			}
			var total int64
			for _, b := range buckets {
				total += b.Total
			}
			if total != c.want {
				return fmt.Errorf("stats %s counted %d events, want %d", c.name, total, c.want)
			}
		}
		slices.Sort(took)
		out[c.name+"_ms_median"] = float64(took[rounds/2].Microseconds()) / 1000
		out[c.name+"_ms_max"] = float64(took[rounds-1].Microseconds()) / 1000
		fmt.Fprintf(env.Stderr, "bench: %s: median %s of %d\n", c.name, took[rounds/2].Round(time.Millisecond), rounds)
	}
	for _, category := range []string{"", "order"} {
		plan, err := explainStats(ctx, pool, qfrom, to, category)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "bench: the plan of the hourly count (category %q):\n%s\n", category, plan)
		out["index_only_scan"+map[string]string{"": "", "order": "_category"}[category]] = strings.Contains(plan, "Index Only Scan using events_")
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, string(b))
	return err
}

// explainStats is the plan of eventStats' statement (eventstore.Stats) for an hourly count,
// of one category or all ("").
func explainStats(ctx context.Context, pool *pgxpool.Pool, from, to time.Time, category string) (string, error) {
	rows, err := pool.Query(ctx, pgsql.BenchExplainStats(from, to, category))
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// fillStatsEvents inserts n events recorded evenly over [from, to) in chunks, with a progress
// line per chunk, making the partitions they need first.
func fillStatsEvents(ctx context.Context, env *cli.Env, pool *pgxpool.Pool, n int, from, to time.Time) error {
	if _, err := pool.Exec(ctx, pgsql.BenchStatsDropIndex); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, pgsql.BenchStatsPartitions, n); err != nil {
		return fmt.Errorf("make partitions: %w", err)
	}
	const chunk = 100_000
	started := time.Now()
	for first := 0; first < n; first += chunk {
		last := min(first+chunk, n) - 1
		// Four categories, ten types, streams of ten events; the ids go to event_ids in the
		// same statement, as the store's appends do.
		if _, err := pool.Exec(ctx, pgsql.BenchStatsInsert, first, last, from, to, n); err != nil {
			return fmt.Errorf("insert events %d..%d: %w", first, last, err)
		}
		fmt.Fprintf(env.Stderr, "bench: %d of %d events inserted, %s\n", last+1, n, time.Since(started).Round(time.Second))
	}
	return nil
}

// waitStatsVisible waits until eventStats counts all n events: a transaction elsewhere on the
// server that began before the last insert holds back what the global order shows, and so
// what eventStats counts, until it ends.
func waitStatsVisible(ctx context.Context, env *cli.Env, store *eventstore.Store, from, to time.Time, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		buckets, err := store.Stats(ctx, eventstore.StatsOptions{From: from, To: to, Interval: 24 * time.Hour})
		if err != nil {
			return err
		}
		var total int64
		for _, b := range buckets {
			total += b.Total
		}
		if total == int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			holders, _ := store.HeldBackBy(ctx, 3)
			return fmt.Errorf("eventStats counts %d of %d events after a minute; held back by %+v", total, n, holders)
		}
		fmt.Fprintf(env.Stderr, "bench: %d of %d events visible, waiting for older transactions to end\n", total, n)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Second):
		}
	}
}
