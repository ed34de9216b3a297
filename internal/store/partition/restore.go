package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// ErrOverlap is returned by Restore when an archive's ranges overlap partitions that exist.
var ErrOverlap = errors.New("archive overlaps existing partitions")

// Restore brings an archive's events back: it reads the file once to check it against its
// manifest, then, in one transaction, makes and attaches a partition for each archived range
// and copies the events into events (COPY), and records their event ids again. Events come
// back with their positions and transaction ids, so in their place in the global order. A file
// that does not match its manifest, or whose ranges overlap a partition that exists (attached
// or detached), is refused before anything is written; any failure after that rolls the whole
// restore back.
func (m *Manager) Restore(ctx context.Context, path string, progress Progress) (Manifest, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	manifest, err := scan(path, progress, nil)
	if err != nil {
		return Manifest{}, fmt.Errorf("restore %s: %w", path, err)
	}
	if len(manifest.Partitions) == 0 {
		return Manifest{}, fmt.Errorf("restore %s: %w: the manifest lists no partitions", path, ErrCorrupt)
	}
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgsql.PartitionLock); err != nil {
			return err
		}
		existing, err := partitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range manifest.Partitions {
			for _, p := range existing {
				if r.First < p.End && p.First < r.End {
					state := "attached"
					if !p.Attached {
						state = "detached"
					}
					return fmt.Errorf("%w: the archived range [%d, %d) overlaps partition %s [%d, %d), which is %s; restore only what was archived and not restored since", ErrOverlap, r.First, r.End, p.Name, p.First, p.End, state)
				}
			}
		}
		for _, r := range manifest.Partitions {
			if _, err := tx.Exec(ctx, pgsql.PartitionMake, r.First, r.End); err != nil {
				return fmt.Errorf("make partition [%d, %d): %w", r.First, r.End, err)
			}
		}
		src := &copySource{path: path, progress: progress, ranges: manifest.Partitions, total: manifest.Count}
		src.start()
		defer src.stop()
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"events"},
			[]string{"position", "transaction_id", "event_id", "stream_id", "version", "type", "schema_version", "data", "metadata", "recorded_at", "tags"}, src)
		if err != nil {
			return fmt.Errorf("copy events: %w", err)
		}
		if n != manifest.Count {
			return fmt.Errorf("copied %d events, the manifest says %d", n, manifest.Count)
		}
		for _, r := range manifest.Partitions {
			_, err := tx.Exec(ctx, pgsql.PartitionRestoreEventIDs, r.First, r.End)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "event_ids_pkey" {
				return fmt.Errorf("an archived event id is stored again since the archive was made (%s): restoring would store it twice", pgErr.Detail)
			}
			if err != nil {
				return fmt.Errorf("record event ids of [%d, %d): %w", r.First, r.End, err)
			}
		}
		progress("restored %d events; committing", n)
		return nil
	})
	if err != nil {
		return Manifest{}, fmt.Errorf("restore %s: %w; nothing was restored", path, err)
	}
	return manifest, nil
}

// copySource feeds COPY from the archive, read a second time in a goroutine of its own; the
// second reading is checked against the manifest again, so a file changed between the two
// fails the restore.
type copySource struct {
	path     string
	progress Progress
	ranges   []ManifestRange
	total    int64

	recs   chan record
	done   chan error
	cancel chan struct{}
	cur    record
	err    error
	n      int64
	last   time.Time
}

func (s *copySource) start() {
	s.recs = make(chan record, 256)
	s.done = make(chan error, 1)
	s.cancel = make(chan struct{})
	s.last = time.Now()
	go func() {
		_, err := scan(s.path, func(string, ...any) {}, func(r record) error {
			if !s.inRanges(r.Position) {
				return fmt.Errorf("%w: event at position %d lies outside the manifest's partitions", ErrCorrupt, r.Position)
			}
			select {
			case s.recs <- r:
				return nil
			case <-s.cancel:
				return errors.New("restore stopped")
			}
		})
		close(s.recs)
		s.done <- err
	}()
}

// stop ends the reading goroutine and waits for it.
func (s *copySource) stop() {
	close(s.cancel)
	for range s.recs { //nolint:revive // drain
	}
}

func (s *copySource) inRanges(pos int64) bool {
	for _, r := range s.ranges {
		if pos >= r.First && pos < r.End {
			return true
		}
	}
	return false
}

func (s *copySource) Next() bool {
	r, ok := <-s.recs
	if !ok {
		s.err = <-s.done
		return false
	}
	s.cur = r
	s.n++
	if time.Since(s.last) >= time.Second {
		s.last = time.Now()
		s.progress("restoring: %d of %d events copied", s.n, s.total)
	}
	return true
}

func (s *copySource) Values() ([]any, error) {
	r := s.cur
	var id pgtype.UUID
	if err := id.Scan(r.EventID); err != nil {
		return nil, fmt.Errorf("%w: event at position %d: event id %q: %w", ErrCorrupt, r.Position, r.EventID, err)
	}
	return []any{r.Position, r.TransactionID, id, r.StreamID, r.Version, r.Type, r.SchemaVersion, r.Data, r.Metadata, r.RecordedAt, r.Tags}, nil
}

func (s *copySource) Err() error { return s.err }
