// Package partition keeps the events table's partitions: it makes them ahead of the appends,
// lists them, and archives old ones to a file (and restores them from it) without rewriting any
// event. Partitions are ranges of positions, [First, End), made by strata_make_event_partition
// (migrations/00004_partitioned_events.sql); docs/design.md, "Partitions and archives", has the
// reasoning.
package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// DefaultSize is how many positions a partition spans unless configured.
const DefaultSize = 1_000_000

// Ahead is how many partitions past the next position Ensure keeps made.
const Ahead = 2

// CheckEvery is how often Run makes partitions ahead.
const CheckEvery = 5 * time.Second

// Partition is one range of positions of the events table, [First, End).
type Partition struct {
	Name        string
	First, End  int64
	Attached    bool
	Rows        int64 // filled by List only
	HasRowCount bool
}

// Name returns the table name of the partition [first, end): both bounds in 19 digits, so that
// names sort like ranges.
func Name(first, end int64) string { return fmt.Sprintf("events_p%019d_%019d", first, end) }

var namePattern = regexp.MustCompile(`^events_p([0-9]{19})_([0-9]{19})$`) //nolint:gochecknoglobals // read-only

// parseName returns the range a partition's name gives.
func parseName(name string) (first, end int64, ok bool) {
	m := namePattern.FindStringSubmatch(name)
	if m == nil {
		return 0, 0, false
	}
	f, err1 := strconv.ParseInt(m[1], 10, 64)
	e, err2 := strconv.ParseInt(m[2], 10, 64)
	return f, e, err1 == nil && err2 == nil && e > f
}

// Manager makes, lists, archives and restores partitions.
type Manager struct {
	pool   *pgxpool.Pool
	size   int64
	logger *slog.Logger
}

// New returns a Manager that makes partitions of size positions.
func New(pool *pgxpool.Pool, size int64, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{pool: pool, size: size, logger: logger}
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func partitions(ctx context.Context, q queryer) ([]Partition, error) {
	rows, err := q.Query(ctx, pgsql.PartitionList)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var out []Partition
	for rows.Next() {
		var p Partition
		if err := rows.Scan(&p.Name, &p.Attached); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		var ok bool
		if p.First, p.End, ok = parseName(p.Name); ok {
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// List returns every partition, attached or detached, in order of range, with its row count.
func (m *Manager) List(ctx context.Context) ([]Partition, error) {
	ps, err := partitions(ctx, m.pool)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if err := m.pool.QueryRow(ctx, pgsql.PartitionCount(ps[i].Name)).Scan(&ps[i].Rows); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", ps[i].Name, err)
		}
		ps[i].HasRowCount = true
	}
	return ps, nil
}

// Next returns the position the next append draws, at least.
func (m *Manager) Next(ctx context.Context) (int64, error) {
	var next int64
	if err := m.pool.QueryRow(ctx, pgsql.PartitionNext).Scan(&next); err != nil {
		return 0, fmt.Errorf("read the next position: %w", err)
	}
	return next, nil
}

// Ensure makes partitions until at least Ahead of them lie wholly past the next position, plus
// extra more, and returns those it made. Ranges continue from the highest partition there is
// (attached or detached), so they never overlap; when appends have run past every partition,
// the gap is filled first.
func (m *Manager) Ensure(ctx context.Context, extra int) ([]Partition, error) {
	var made []Partition
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		made = nil
		if _, err := tx.Exec(ctx, pgsql.PartitionLock); err != nil {
			return err
		}
		var next int64
		if err := tx.QueryRow(ctx, pgsql.PartitionNext).Scan(&next); err != nil {
			return fmt.Errorf("read the next position: %w", err)
		}
		ps, err := partitions(ctx, tx)
		if err != nil {
			return err
		}
		end := next / m.size * m.size
		if len(ps) > 0 {
			end = ps[len(ps)-1].End
			for _, p := range ps {
				end = max(end, p.End)
			}
		}
		makeOne := func(first, stop int64) error {
			if _, err := tx.Exec(ctx, pgsql.PartitionMake, first, stop); err != nil {
				return fmt.Errorf("make partition [%d, %d): %w", first, stop, err)
			}
			made = append(made, Partition{Name: Name(first, stop), First: first, End: stop, Attached: true})
			return nil
		}
		if aligned := next / m.size * m.size; end < aligned {
			if err := makeOne(end, aligned); err != nil {
				return err
			}
			end = aligned
		}
		for end <= next+Ahead*m.size {
			if err := makeOne(end, end+m.size); err != nil {
				return err
			}
			end += m.size
		}
		for range extra {
			if err := makeOne(end, end+m.size); err != nil {
				return err
			}
			end += m.size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("make partitions ahead: %w", err)
	}
	return made, nil
}

// Run makes partitions ahead every CheckEvery until ctx ends. A failure is logged and tried
// again at the next check: appends still have the partitions made before.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		made, err := m.Ensure(ctx, 0)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			m.logger.WarnContext(ctx, "make event partitions ahead", "err", err)
		}
		for _, p := range made {
			m.logger.InfoContext(ctx, "event partition made", "name", p.Name, "first", p.First, "end", p.End)
		}
	}
}

// ErrNothingToArchive is returned by Archive when no partition lies wholly before the bound.
var ErrNothingToArchive = errors.New("nothing to archive")
