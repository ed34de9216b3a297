package benchcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	cmdhandler "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/transport/cli"
)

// benchReplayCmd runs `strata bench replay`: one aggregate's stream of --events events, loaded
// at its latest version and at its middle one, with and without snapshots; one JSON line.
func benchReplayCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
	var (
		events, rounds, every int
		scratch               string
	)
	cfg, _, err := cli.Parse(env, "bench replay", args, func(_ *config.Config, f *config.FlagSet) {
		f.Int(&events, "events", "STRATA_BENCH_EVENTS", 100000, "events in the aggregate's stream")
		f.Int(&rounds, "rounds", "STRATA_BENCH_ROUNDS", 15, "loads measured per case (the median is reported)")
		f.Int(&every, "every", "STRATA_BENCH_SNAPSHOT_EVERY", 100, "snapshot every N events (the with-snapshots case)")
		f.String(&scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "database made afresh on the server for the run and dropped after it")
	})
	if err != nil {
		return err
	}
	if events < 2 || rounds < 1 || every < 1 {
		return fmt.Errorf("%w: --events must be at least 2, --rounds and --every at least 1", cli.ErrUsage)
	}
	pool, cleanup, err := scratchPool(ctx, pg, cfg, cli.NewLogger(cfg, env.Stderr), scratch, nil)
	if err != nil {
		return err
	}
	defer cleanup()
	store := eventstore.New(pool, eventstore.Options{Upcasters: cmdhandler.Upcasters(aggregates.All()), Personal: cmdhandler.PersonalFields(aggregates.All())})
	plain := cmdhandler.New(store, cmdhandler.Options{})
	snapped := cmdhandler.New(store, cmdhandler.Options{SnapshotEvery: map[string]int{user.Category: every}})

	// The stream: a user renamed events-1 times, written in batches; after each batch a load
	// through the snapshotting handler leaves snapshots as commands would while it grew.
	id := uuid.NewString()
	stream := user.StreamID(id)
	reg, _ := json.Marshal(user.Registered{UserID: id, Name: "N0", Email: "bench@example.com"})
	batch := []eventstore.EventData{{Type: user.TypeRegistered, Data: reg}}
	started := time.Now()
	for v := 2; v <= events; v++ {
		data, _ := json.Marshal(user.Renamed{OldName: fmt.Sprintf("N%d", v-2), NewName: fmt.Sprintf("N%d", v-1)})
		batch = append(batch, eventstore.EventData{Type: user.TypeRenamed, Data: data})
		if len(batch) == 1000 || v == events {
			if _, err := store.Append(ctx, stream, eventstore.Any(), batch); err != nil {
				return err
			}
			batch = batch[:0]
			if _, err := snapped.LoadUser(ctx, id); err != nil {
				return err
			}
			if v%20000 < 1000 {
				fmt.Fprintf(env.Stderr, "bench: %d of %d events written, %s\n", v, events, time.Since(started).Round(time.Second))
			}
		}
	}

	measure := func(h *cmdhandler.Handler, version int64) (float64, error) {
		times := make([]float64, 0, rounds)
		for range rounds {
			t0 := time.Now()
			s, err := h.UserUntil(ctx, id, cmdhandler.Until{Version: version})
			if err != nil {
				return 0, err
			}
			if want := version; want > 0 && s.Version != want || want == 0 && s.Version != int64(events) {
				return 0, fmt.Errorf("loaded version %d", s.Version)
			}
			times = append(times, float64(time.Since(t0).Microseconds())/1000)
		}
		slices.Sort(times)
		return times[len(times)/2], nil
	}
	mid := int64(events / 2)
	res := map[string]any{"events": events, "rounds": rounds, "snapshot_every": every}
	cases := []struct {
		name    string
		h       *cmdhandler.Handler
		version int64
	}{
		{"latest_full_replay_ms", plain, 0}, {"latest_with_snapshots_ms", snapped, 0},
		{"middle_full_replay_ms", plain, mid}, {"middle_with_snapshots_ms", snapped, mid},
	}
	p50 := map[string]float64{}
	for _, c := range cases {
		ms, err := measure(c.h, c.version)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		p50[c.name] = ms
		res[c.name] = ms
	}
	res["latest_ratio"] = p50["latest_full_replay_ms"] / p50["latest_with_snapshots_ms"]
	res["middle_ratio"] = p50["middle_full_replay_ms"] / p50["middle_with_snapshots_ms"]
	res["middle_version"] = mid
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, string(out))
	return err
}
