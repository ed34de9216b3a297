package partition

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// Format names the archive format in every manifest.
const Format = "strata-archive/1"

// Bound is what `strata archive --before` takes: a position number (every position of an
// archived partition is below it), a position cursor as the API hands out (every archived event
// is before it in the global order), or a time (every archived event was recorded before it).
type Bound struct {
	seq    int64
	cursor *cursor
	time   time.Time
	text   string
}

type cursor struct {
	tx  uint64
	seq int64
}

func (b Bound) String() string { return b.text }

// ParseBound reads a bound: digits are a position number, 32 hex digits a position cursor,
// anything else an RFC 3339 time.
func ParseBound(s string) (Bound, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return Bound{seq: n, text: s}, nil
	}
	if len(s) == 32 {
		if _, err := eventstore.ParsePosition(s); err == nil {
			b, _ := hex.DecodeString(s)
			return Bound{cursor: &cursor{tx: binary.BigEndian.Uint64(b[:8]), seq: int64(binary.BigEndian.Uint64(b[8:]))}, text: s}, nil //nolint:gosec // ParsePosition checked the range
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return Bound{time: t, text: s}, nil
	}
	return Bound{}, fmt.Errorf("--before %q is neither a position number, a position cursor (32 hex digits) nor an RFC 3339 time", s)
}

// before reports whether every event of the partition p lies before the bound; when not, why.
func (b Bound) before(ctx context.Context, q queryer, p Partition) (bool, string, error) {
	switch {
	case b.cursor != nil:
		var tx *uint64
		var seq *int64
		err := q.QueryRow(ctx, pgsql.PartitionLastEvent(p.Name)).Scan(&tx, &seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return true, "", nil
		}
		if err != nil {
			return false, "", err
		}
		if *tx < b.cursor.tx || *tx == b.cursor.tx && *seq < b.cursor.seq {
			return true, "", nil
		}
		return false, "it holds events at or after that position in the global order", nil
	case !b.time.IsZero():
		var last *time.Time
		if err := q.QueryRow(ctx, pgsql.PartitionLastRecordedAt(p.Name)).Scan(&last); err != nil {
			return false, "", err
		}
		if last == nil || last.Before(b.time) {
			return true, "", nil
		}
		return false, fmt.Sprintf("it holds events recorded at or after that time (the last at %s)", last.UTC().Format(time.RFC3339Nano)), nil
	default:
		if p.End <= b.seq {
			return true, "", nil
		}
		return false, fmt.Sprintf("it spans positions up to %d, at or after %d: only whole partitions are archived", p.End-1, b.seq), nil
	}
}

// Manifest describes an archive: its events' first and last positions in the global order, how
// many there are, the SHA-256 of their lines, and the partitions they came from.
type Manifest struct {
	Format        string          `json:"format"`
	FirstPosition string          `json:"first_position"` // cursor of the first event in the global order; "" when empty
	LastPosition  string          `json:"last_position"`
	Count         int64           `json:"count"`
	SHA256        string          `json:"sha256"` // of every event line, newline included, in file order
	Partitions    []ManifestRange `json:"partitions"`
	CreatedAt     time.Time       `json:"created_at"`
}

// ManifestRange is one archived partition.
type ManifestRange struct {
	First int64 `json:"first"`
	End   int64 `json:"end"` // excluded
	Count int64 `json:"count"`
}

// manifestLine is the archive's last line.
type manifestLine struct {
	Manifest *Manifest `json:"manifest"`
}

// record is one event line: every column a restore needs to put the event back exactly.
type record struct {
	Position      int64           `json:"position"`
	TransactionID uint64          `json:"transaction_id"`
	EventID       string          `json:"event_id"`
	StreamID      string          `json:"stream_id"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int32           `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Tags          []string        `json:"tags,omitempty"` // archives made before tags have none
}

func (r record) cursor() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], r.TransactionID)
	binary.BigEndian.PutUint64(b[8:], uint64(r.Position)) //nolint:gosec // positions are positive
	return hex.EncodeToString(b[:])
}

// Progress receives a line about long work now and then.
type Progress func(format string, args ...any)

// ArchiveResult is what Archive did.
type ArchiveResult struct {
	Manifest Manifest
	// Stopped says why the partition after the archived ones was not archived.
	Stopped string
}

// detachTimeout bounds the wait for the lock DETACH PARTITION takes on events; appends queue
// behind a waiting DETACH, so it must not wait long. pgsql.PartitionDetachLockTimeout sets it;
// this is the same time, for the errors, and a test keeps the two equal.
const detachTimeout = "3s"

// Archive detaches the partitions that lie wholly before bound and can receive no more events,
// writes their events to path in the global order as gzip NDJSON with a manifest as the last
// line, syncs and reads the file back to verify it, and only then drops the partitions and
// their event ids. Only the lowest partitions are archived, without gaps: it stops at the
// first that does not qualify and says why (ArchiveResult.Stopped). Partitions left detached
// by an earlier Archive that failed are archived too.
//
// On failure: before the file is verified, the partitions are attached again (if that fails
// too, the error says so, and running Archive again finishes the work); after, the file is
// complete and the partitions stay detached until a new Archive drops them.
func (m *Manager) Archive(ctx context.Context, bound Bound, path string, progress Progress) (ArchiveResult, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if _, err := os.Stat(path); err == nil {
		return ArchiveResult{}, fmt.Errorf("archive to %s: the file exists; choose another name", path)
	}
	// The file is made before anything is detached, so a path that cannot be written fails
	// with nothing changed.
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // the operator names the file
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: create %s: %w (a leftover of an archive that failed may be deleted)", tmp, err)
	}
	defer func() { _ = f.Close() }()
	written := false
	defer func() {
		if !written {
			_ = os.Remove(tmp)
		}
	}()
	var res ArchiveResult
	var ps []Partition
	var justDetached []Partition
	err = retryLock(ctx, func() error {
		var err error
		ps, justDetached, res.Stopped, err = m.detach(ctx, bound)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("archive: detach partitions: %w", err)
	}
	if len(ps) == 0 {
		return res, fmt.Errorf("%w before %s: %s", ErrNothingToArchive, bound, res.Stopped)
	}
	for _, p := range ps {
		progress("detached partition %s [%d, %d)", p.Name, p.First, p.End)
	}
	manifest, err := m.write(ctx, ps, f, path, progress)
	written = err == nil
	if err == nil {
		err = verifyFile(path, manifest, progress)
	}
	if err != nil {
		_ = os.Remove(path) // the file did not exist before (checked above); half an archive is none
		if rerr := m.reattach(context.WithoutCancel(ctx), justDetached); rerr != nil {
			return res, fmt.Errorf("archive: %w; attaching the partitions again failed too (%w): they stay detached, and their events unreadable, until `strata archive` runs again", err, rerr)
		}
		return res, fmt.Errorf("archive: %w; nothing was archived, every partition is attached again", err)
	}
	res.Manifest = manifest
	progress("archive %s verified: %d events; dropping %d partitions", path, manifest.Count, len(ps))
	if err := m.drop(ctx, ps); err != nil {
		return res, fmt.Errorf("archive: %s is complete and verified, but dropping the detached partitions failed: %w; they stay detached (their events unreadable) until `strata archive` runs again", path, err)
	}
	return res, nil
}

// retryLock runs f again while it fails for want of a lock (lock_timeout), a few times.
func retryLock(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var pgErr *pgconn.PgError
		if attempt == 5 || !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			if err != nil && errors.As(err, &pgErr) && pgErr.Code == "55P03" {
				return fmt.Errorf("events stayed locked by other transactions for %s, %d times; nothing was detached: %w", detachTimeout, attempt, err)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}

// detach detaches, in one transaction, the lowest attached partitions before bound that can
// receive no more events, and returns them with any detached earlier that lie before bound.
//
// A partition can receive no more events once the sequence has handed out every position in
// it and every transaction that drew one has ended. The first is read before DETACH; DETACH
// then waits for the lock it takes on events, which every appending transaction holds from
// before it draws a position to its end. So once DETACH holds it, every event of the partition
// is committed (or rolled back), and below every reader's horizon.
func (m *Manager) detach(ctx context.Context, bound Bound) (all, detached []Partition, stopped string, err error) {
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		all, detached, stopped = nil, nil, ""
		if _, err := tx.Exec(ctx, pgsql.PartitionLock); err != nil {
			return err
		}
		var next int64
		if err := tx.QueryRow(ctx, pgsql.PartitionNext).Scan(&next); err != nil {
			return err
		}
		ps, err := partitions(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, pgsql.PartitionDetachLockTimeout); err != nil {
			return err
		}
		for _, p := range ps {
			if !p.Attached {
				ok, _, err := bound.before(ctx, tx, p)
				if err != nil {
					return err
				}
				if ok {
					all = append(all, p)
				}
				continue
			}
			if stopped != "" {
				continue
			}
			if p.End > next {
				stopped = fmt.Sprintf("partition %s [%d, %d) can still receive events (the next position is %d)", p.Name, p.First, p.End, next)
				continue
			}
			ok, why, err := bound.before(ctx, tx, p)
			if err != nil {
				return err
			}
			if ok {
				if ok, why, err = applied(ctx, tx, p); err != nil {
					return err
				}
			}
			if !ok {
				stopped = fmt.Sprintf("partition %s [%d, %d) stays: %s", p.Name, p.First, p.End, why)
				continue
			}
			if _, err := tx.Exec(ctx, pgsql.PartitionDetach(p.Name)); err != nil {
				return fmt.Errorf("detach %s: %w", p.Name, err)
			}
			p.Attached = false
			all = append(all, p)
			detached = append(detached, p)
		}
		return nil
	})
	return all, detached, stopped, err
}

// applied reports whether every projection, rebuilds in progress included, has applied every
// event of the partition p that it reads (those of its category, or all of them when its
// category is not known); when not, why. Archived events are gone from the log: a projector
// that had not reached them yet would never apply them.
func applied(ctx context.Context, q queryer, p Partition) (bool, string, error) {
	rows, err := q.Query(ctx, pgsql.CheckpointsAll)
	if err != nil {
		return false, "", fmt.Errorf("read checkpoints: %w", err)
	}
	type checkpoint struct {
		name, at string
		category *string
	}
	var checkpoints []checkpoint
	for rows.Next() {
		var c checkpoint
		if err := rows.Scan(&c.name, &c.category, &c.at); err != nil {
			rows.Close()
			return false, "", fmt.Errorf("read checkpoints: %w", err)
		}
		checkpoints = append(checkpoints, c)
	}
	if err := rows.Err(); err != nil {
		return false, "", fmt.Errorf("read checkpoints: %w", err)
	}
	last := map[string]string{} // the partition's last event, of a category ("" for any), as a cursor
	for _, c := range checkpoints {
		key, query, args := "", pgsql.CheckpointsPartitionLast(p.Name, false), []any{}
		if c.category != nil {
			key, query, args = "category "+*c.category, pgsql.CheckpointsPartitionLast(p.Name, true), []any{*c.category}
		}
		at, ok := last[key]
		if !ok {
			var tx uint64
			var seq int64
			switch err := q.QueryRow(ctx, query, args...).Scan(&tx, &seq); {
			case errors.Is(err, pgx.ErrNoRows):
				at = "" // nothing of it in the partition
			case err != nil:
				return false, "", err
			default:
				// Checkpoints are position cursors: fixed-width hex, which compare as the positions do.
				at = fmt.Sprintf("%016x%016x", tx, seq)
			}
			last[key] = at
		}
		if at != "" && at > c.at {
			return false, fmt.Sprintf("projection %s has not applied all of its events yet (checkpoint %q, the partition's last event it reads at %s)", c.name, c.at, at), nil
		}
	}
	return true, "", nil
}

// reattach attaches partitions Archive detached again.
func (m *Manager) reattach(ctx context.Context, ps []Partition) error {
	if len(ps) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgsql.PartitionLock); err != nil {
			return err
		}
		for _, p := range ps {
			if _, err := tx.Exec(ctx, pgsql.PartitionAttach(p.Name, p.First, p.End)); err != nil {
				return fmt.Errorf("attach %s: %w", p.Name, err)
			}
		}
		return nil
	})
}

// drop drops archived partitions and their event ids in one transaction. event_ids has no
// index on position (it would cost every append), so the delete scans it once per archive.
func (m *Manager) drop(ctx context.Context, ps []Partition) error {
	return pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgsql.PartitionLock); err != nil {
			return err
		}
		for _, p := range ps {
			if _, err := tx.Exec(ctx, pgsql.PartitionDrop(p.Name)); err != nil {
				return fmt.Errorf("drop %s: %w", p.Name, err)
			}
			if _, err := tx.Exec(ctx, pgsql.PartitionDropEventIDs, p.First, p.End); err != nil {
				return fmt.Errorf("prune event ids of %s: %w", p.Name, err)
			}
		}
		return nil
	})
}

// write writes the events of the detached partitions ps to path, through path.partial, synced.
func (m *Manager) write(ctx context.Context, ps []Partition, f *os.File, path string, progress Progress) (Manifest, error) {
	manifest := Manifest{Format: Format, CreatedAt: time.Now().UTC()}
	var tables []string
	for _, p := range ps {
		var n int64
		if err := m.pool.QueryRow(ctx, pgsql.PartitionCount(p.Name)).Scan(&n); err != nil {
			return manifest, fmt.Errorf("count %s: %w", p.Name, err)
		}
		manifest.Partitions = append(manifest.Partitions, ManifestRange{First: p.First, End: p.End, Count: n})
		tables = append(tables, p.Name)
	}
	tmp := f.Name()
	zw := gzip.NewWriter(f)
	bw := bufio.NewWriterSize(zw, 1<<16)
	sum := sha256.New()

	rows, err := m.pool.Query(ctx, pgsql.PartitionArchiveRead(tables))
	if err != nil {
		return manifest, fmt.Errorf("read detached partitions: %w", err)
	}
	defer rows.Close()
	var total int64
	for _, p := range manifest.Partitions {
		total += p.Count
	}
	last := time.Now()
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.Position, &r.TransactionID, &r.EventID, &r.StreamID, &r.Version, &r.Type, &r.SchemaVersion, &r.Data, &r.Metadata, &r.RecordedAt, &r.Tags); err != nil {
			return manifest, fmt.Errorf("read detached partitions: %w", err)
		}
		r.RecordedAt = r.RecordedAt.UTC()
		line, err := json.Marshal(r)
		if err != nil {
			return manifest, err
		}
		line = append(line, '\n')
		sum.Write(line)
		if _, err := bw.Write(line); err != nil {
			return manifest, fmt.Errorf("write %s: %w", tmp, err)
		}
		if manifest.Count == 0 {
			manifest.FirstPosition = r.cursor()
		}
		manifest.LastPosition = r.cursor()
		manifest.Count++
		if time.Since(last) >= time.Second {
			last = time.Now()
			progress("archiving: %d of %d events written", manifest.Count, total)
		}
	}
	if err := rows.Err(); err != nil {
		return manifest, fmt.Errorf("read detached partitions: %w", err)
	}
	if manifest.Count != total {
		return manifest, fmt.Errorf("read %d events of detached partitions that hold %d", manifest.Count, total)
	}
	manifest.SHA256 = hex.EncodeToString(sum.Sum(nil))
	ml, err := json.Marshal(manifestLine{Manifest: &manifest})
	if err != nil {
		return manifest, err
	}
	if _, err := bw.Write(append(ml, '\n')); err != nil {
		return manifest, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := bw.Flush(); err != nil {
		return manifest, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := zw.Close(); err != nil {
		return manifest, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return manifest, fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return manifest, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return manifest, fmt.Errorf("rename %s: %w", tmp, err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		err = dir.Sync()
		_ = dir.Close()
		if err != nil {
			return manifest, fmt.Errorf("sync the directory of %s: %w", path, err)
		}
	}
	return manifest, nil
}

// verifyFile reads an archive back and checks it against the manifest it was written with.
func verifyFile(path string, want Manifest, progress Progress) error {
	got, err := scan(path, progress, nil)
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if got.SHA256 != want.SHA256 || got.Count != want.Count {
		_ = os.Remove(path)
		return fmt.Errorf("verify %s: read back %d events with SHA-256 %s, wrote %d with %s", path, got.Count, got.SHA256, want.Count, want.SHA256)
	}
	return nil
}

// ErrCorrupt is returned when an archive file does not match its manifest.
var ErrCorrupt = errors.New("archive is corrupt")

// scan reads an archive, checks every event line against the manifest (count, SHA-256, ranges,
// order) and returns the manifest; each decoded record goes to each when it is not nil.
func scan(path string, progress Progress, each func(record) error) (Manifest, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names the file
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	br := bufio.NewReaderSize(zr, 1<<16)
	sum := sha256.New()
	var (
		manifest *Manifest
		count    int64
		prev     *record
		last     = time.Now()
	)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if manifest != nil {
			return Manifest{}, fmt.Errorf("%w: a line follows the manifest", ErrCorrupt)
		}
		if bytes.HasPrefix(line, []byte(`{"manifest":`)) {
			var ml manifestLine
			if err := json.Unmarshal(line, &ml); err != nil || ml.Manifest == nil {
				return Manifest{}, fmt.Errorf("%w: the manifest line does not parse", ErrCorrupt)
			}
			manifest = ml.Manifest
			continue
		}
		sum.Write(line)
		count++
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			return Manifest{}, fmt.Errorf("%w: event line %d does not parse: %w", ErrCorrupt, count, err)
		}
		if prev != nil && (r.TransactionID < prev.TransactionID || r.TransactionID == prev.TransactionID && r.Position <= prev.Position) {
			return Manifest{}, fmt.Errorf("%w: event line %d is out of the global order", ErrCorrupt, count)
		}
		prev = &r
		if each != nil {
			if err := each(r); err != nil {
				return Manifest{}, err
			}
		}
		if time.Since(last) >= time.Second {
			last = time.Now()
			progress("reading %s: %d events", path, count)
		}
	}
	if manifest == nil {
		return Manifest{}, fmt.Errorf("%w: no manifest line at the end (the file is cut short)", ErrCorrupt)
	}
	if manifest.Format != Format {
		return Manifest{}, fmt.Errorf("%w: format %q, this strata reads %q", ErrCorrupt, manifest.Format, Format)
	}
	got := hex.EncodeToString(sum.Sum(nil))
	if count != manifest.Count || got != manifest.SHA256 {
		return Manifest{}, fmt.Errorf("%w: %d event lines with SHA-256 %s, the manifest says %d with %s", ErrCorrupt, count, got, manifest.Count, manifest.SHA256)
	}
	var inRanges int64
	for _, r := range manifest.Partitions {
		if r.End <= r.First || r.Count < 0 {
			return Manifest{}, fmt.Errorf("%w: the manifest lists the range [%d, %d) with %d events", ErrCorrupt, r.First, r.End, r.Count)
		}
		inRanges += r.Count
	}
	if inRanges != manifest.Count {
		return Manifest{}, fmt.Errorf("%w: the manifest's partitions hold %d events, its count says %d", ErrCorrupt, inRanges, manifest.Count)
	}
	return *manifest, nil
}
