package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Scavenger defaults; see ScavengeOptions.
const (
	DefaultScavengeBatch    = 1000
	DefaultScavengeInterval = time.Hour
)

// ScavengeOptions configures a Scavenger.
type ScavengeOptions struct {
	// Batch is the most events one delete statement (one transaction) removes; 0 means
	// DefaultScavengeBatch.
	Batch int
	// Interval is Run's pause between passes; 0 means DefaultScavengeInterval.
	Interval time.Duration
	// Applied returns the position up to which every reader that must see the events of a
	// category (the projectors that read it) has read: the scavenger deletes no event of the
	// category after it, and none at all while it is the zero position. Unbounded() means that
	// no reader waits for the category. nil means no such reader for any category.
	Applied func(ctx context.Context, category string) (Position, error)
}

// Unbounded returns the position after every event: the bound of a category no reader waits for.
func Unbounded() Position { return Position{tx: math.MaxInt64, seq: math.MaxInt64} }

// Scavenger physically deletes the events that streams hide (lifecycle.go): those before a
// stream's truncateBefore (a deleted stream's events up to its tombstone among them), beyond
// its maxCount, or older than its maxAge. Rows are deleted, never renumbered: the events left
// keep their positions, and the global order is never rewritten. A stream's tombstone stays.
// It works in bounded batches, each its own short transaction, so it holds back no reader of
// the global order for long. Several scavengers may run at once (they delete the same rows
// twice at worst); the server runs one, in its leader.
type Scavenger struct {
	store  *Store
	opts   ScavengeOptions
	logger *slog.Logger
}

// NewScavenger returns a Scavenger of store.
func NewScavenger(store *Store, opts ScavengeOptions, logger *slog.Logger) *Scavenger {
	if opts.Batch <= 0 {
		opts.Batch = DefaultScavengeBatch
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultScavengeInterval
	}
	return &Scavenger{store: store, opts: opts, logger: logger}
}

// Run scavenges at once and then every Interval until ctx ends; it returns nil then. A failed
// pass is logged and the next one tries again.
func (sc *Scavenger) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := sc.Once(ctx); err != nil && ctx.Err() == nil {
			level := slog.LevelError
			if IsUnavailable(err) {
				level = slog.LevelWarn
			}
			sc.logger.Log(ctx, level, "scavenge failed; trying again at the next interval", "interval", sc.opts.Interval, "err", err)
		}
		t.Reset(sc.opts.Interval)
	}
}

const scavengePage = 100

// Once makes one pass over every stream with lifecycle settings and deletes what they hide,
// up to what the projectors have applied. It returns how many events it deleted; it logs its
// progress as it goes.
func (sc *Scavenger) Once(ctx context.Context) (int64, error) {
	start := time.Now()
	bounds := map[string]Position{} // by category, read once a pass
	bound := func(streamID string) (Position, error) {
		if sc.opts.Applied == nil {
			return Unbounded(), nil
		}
		category := Category(streamID)
		if b, ok := bounds[category]; ok {
			return b, nil
		}
		b, err := sc.opts.Applied(ctx, category)
		if err != nil {
			return Position{}, fmt.Errorf("scavenge: %w", err)
		}
		if b.IsZero() {
			sc.logger.InfoContext(ctx, "scavenge skips a category: a projection that reads it has applied no event yet", "category", category)
		}
		bounds[category] = b
		return b, nil
	}
	var total, streams int64
	after := ""
	for {
		rows, err := sc.store.pool.Query(ctx, pgsql.EventstoreScavengeStreams, after, scavengePage)
		if err != nil {
			return total, fmt.Errorf("scavenge: list streams: %w", err)
		}
		var (
			ids    []string
			maxAge []bool
		)
		for rows.Next() {
			var id string
			var aged bool
			if err := rows.Scan(&id, &aged); err != nil {
				rows.Close()
				return total, fmt.Errorf("scavenge: list streams: %w", err)
			}
			ids, maxAge = append(ids, id), append(maxAge, aged)
		}
		if err := rows.Err(); err != nil {
			return total, fmt.Errorf("scavenge: list streams: %w", err)
		}
		for i, id := range ids {
			b, err := bound(id)
			if err != nil {
				return total, err
			}
			if b.IsZero() {
				continue
			}
			n, err := sc.stream(ctx, id, maxAge[i], b, total)
			total += n
			if err != nil {
				return total, err
			}
			streams++
		}
		if len(ids) < scavengePage {
			break
		}
		after = ids[len(ids)-1]
	}
	sc.logger.InfoContext(ctx, "scavenge done", "deleted", total, "streams", streams, "categories", len(bounds), "took", time.Since(start).Round(time.Millisecond))
	return total, nil
}

// stream deletes what one stream hides, a batch at a time.
func (sc *Scavenger) stream(ctx context.Context, streamID string, maxAge bool, bound Position, before int64) (int64, error) {
	query := pgsql.EventstoreScavengeBatch
	if maxAge {
		query = pgsql.EventstoreScavengeBatchMaxAge
	}
	var deleted int64
	for {
		var n int64
		if err := sc.store.pool.QueryRow(ctx, query, streamID, bound.tx, bound.seq, sc.opts.Batch).Scan(&n); err != nil {
			return deleted, fmt.Errorf("scavenge %s: %w", streamID, err)
		}
		deleted += n
		if n > 0 {
			sc.logger.InfoContext(ctx, "scavenge progress", "stream_id", streamID, "deleted", deleted, "total", before+deleted)
		}
		if n < int64(sc.opts.Batch) {
			return deleted, nil
		}
	}
}
