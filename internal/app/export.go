package app

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-es/strata/internal/cli"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/eventstore"
)

// exportSettle bounds how long export waits for the log to be readable up to its --to bound
// (a transaction that began before a --to time, or one holding back the global order).
const exportSettle = 10 * time.Second

// exportBound is a --from or --to value: a position cursor or a time.
type exportBound struct {
	text string
	pos  eventstore.Position
	time time.Time // zero for a position
}

func parseExportBound(name, s string) (exportBound, error) {
	s = strings.TrimSpace(s)
	if p, err := eventstore.ParsePosition(s); err == nil {
		return exportBound{text: s, pos: p}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.After(time.Now()) {
			return exportBound{}, fmt.Errorf("--%s %s is in the future", name, s)
		}
		return exportBound{text: s, time: t}, nil
	}
	return exportBound{}, fmt.Errorf("--%s %q is neither a position (32 hex digits, as allEvents and export print them) nor an RFC 3339 time", name, s)
}

// exportRequest is a parsed `strata export` command line.
type exportRequest struct {
	from, to *exportBound
	opts     eventstore.ReadAllOptions
	format   string
	out      string
}

// exportCmd is `strata export`: events of the global order between two bounds, to stdout or a
// file, page by page (memory does not grow with the export), resumable by position.
func exportCmd(ctx context.Context, env *cli.Env, args []string) error {
	var from, to, category, format, out string
	var types []string
	var batch int
	cfg, _, err := cli.Parse(env, "export", args, func(c *config.Config, fs *config.FlagSet) {
		fs.String(&from, "from", "STRATA_EXPORT_FROM", "", "start after this position (exclusive), or with the first event not in the log as of this RFC 3339 time; empty: the start of the log")
		fs.String(&to, "to", "STRATA_EXPORT_TO", "", "end with this position (inclusive), or with the log as of this RFC 3339 time; empty: the end of the log when the export starts")
		fs.String(&category, "category", "STRATA_EXPORT_CATEGORY", "", "only events of streams in this category")
		fs.StringList(&types, "types", "STRATA_EXPORT_TYPES", "only events of these types, comma-separated")
		fs.String(&format, "format", "STRATA_EXPORT_FORMAT", "ndjson", "ndjson (one JSON object per line) or csv (a header, then a row per event)")
		fs.String(&out, "out", "STRATA_EXPORT_OUT", "", "file to write, through FILE.partial, which becomes FILE when complete; neither may exist; empty: stdout")
		fs.Int(&batch, "batch", "STRATA_EXPORT_BATCH", 1000, fmt.Sprintf("events read per page, 1 to %d; memory grows with it, not with the export", eventstore.DefaultMaxReadCount))
		c.RegisterPersonal(fs) // to open personal fields, as allEvents shows them
	})
	if err != nil {
		return err
	}
	usageErr := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(env.Stderr, "strata export:", msg)
		return fmt.Errorf("%w: %s", cli.ErrUsage, msg)
	}
	req := exportRequest{format: format, out: out, opts: eventstore.ReadAllOptions{Max: batch, Category: category, Types: types}}
	if format != "ndjson" && format != "csv" {
		return usageErr("--format must be ndjson or csv, not %q", format)
	}
	if batch < 1 || batch > eventstore.DefaultMaxReadCount {
		return usageErr("--batch must be from 1 to %d, not %d", eventstore.DefaultMaxReadCount, batch)
	}
	for _, bound := range []struct {
		name, text string
		dst        **exportBound
	}{{"from", from, &req.from}, {"to", to, &req.to}} {
		if bound.text == "" {
			continue
		}
		b, err := parseExportBound(bound.name, bound.text)
		if err != nil {
			return usageErr("%s", err)
		}
		*bound.dst = &b
	}
	if f, t := req.from, req.to; f != nil && t != nil {
		if (f.time.IsZero() && t.time.IsZero() && f.pos.Compare(t.pos) > 0) || (!f.time.IsZero() && !t.time.IsZero() && f.time.After(t.time)) {
			return usageErr("--from %s is after --to %s", f.text, t.text)
		}
	}
	if out != "" {
		if _, err := os.Stat(out); err == nil {
			return usageErr("--out %s exists; choose another name or remove it", out)
		}
		if _, err := os.Stat(out + ".partial"); err == nil {
			return usageErr("%s.partial exists, left by an export that stopped (its last line says where it ends); move it away or remove it", out)
		}
	}
	if _, err := cfg.PersonalDataKey(); err != nil {
		return err
	}

	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	store := eventstore.New(db.pool, storeOptions(cfg))
	return runExport(ctx, env, store, req, usageErr)
}

// runExport resolves the bounds, reads the first page (so that a filter the store refuses is
// refused before any file is made), then writes page after page.
func runExport(ctx context.Context, env *cli.Env, store *eventstore.Store, req exportRequest, usageErr func(string, ...any) error) error {
	after, last, err := resolveExportBounds(ctx, store, req)
	if err != nil {
		if ve := (*eventstore.ValidationError)(nil); errors.As(err, &ve) {
			return usageErr("%s", err)
		}
		return err
	}
	if after.Compare(last) > 0 {
		end := "the end of the log"
		if req.to != nil {
			end = "--to " + req.to.text
		}
		return usageErr("--from %s is after %s", req.from.text, end)
	}
	req.opts.After = after
	page, err := store.ReadAll(ctx, req.opts)
	if err != nil {
		if ve := (*eventstore.ValidationError)(nil); errors.As(err, &ve) {
			return usageErr("%s", err)
		}
		return err
	}

	w, err := openExportOutput(env, req.out)
	if err != nil {
		return err
	}
	defer w.abandon()
	enc := newEventEncoder(req.format, w.buf)
	if err := enc.header(); err != nil {
		return w.failed(err)
	}

	started, lastProgress := time.Now(), time.Now()
	var written, refused int64
	cursor := after
	progress := func() {
		secs := time.Since(started).Seconds()
		fmt.Fprintf(env.Stderr, "exporting: %d events, at position %s, %.0f events/s\n", written, orNone(cursor.String()), float64(written)/max(secs, 1e-3))
	}
	interrupted := func(cause error) error {
		// Everything encoded so far is whole events: flushed, they are a prefix that --from
		// continues exactly.
		ferr := enc.flush()
		if ferr == nil {
			ferr = w.flush()
		}
		where := "stdout"
		if req.out != "" {
			where = w.tmp
			if ferr != nil {
				where = "nothing usable (" + ferr.Error() + ")"
				_ = os.Remove(w.tmp)
			}
		}
		fmt.Fprintf(env.Stderr, "export stopped after %d events, %s holds them; continue with --from %s\n", written, where, orNone(cursor.String()))
		return fmt.Errorf("export stopped: %w", cause)
	}
	for {
		done := len(page) < req.opts.Max
		for i := range page {
			e := &page[i]
			if e.Position.Compare(last) > 0 {
				done = true
				break
			}
			if e.UpcastErr != nil {
				refused++
			}
			if err := enc.event(e); err != nil {
				return w.failed(err)
			}
			written++
			cursor = e.Position
		}
		if done {
			break
		}
		if time.Since(lastProgress) >= time.Second {
			lastProgress = time.Now()
			progress()
		}
		req.opts.After = cursor
		if page, err = store.ReadAll(ctx, req.opts); err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			return interrupted(err)
		}
	}
	if err := enc.flush(); err != nil {
		return w.failed(err)
	}
	if err := w.commit(); err != nil {
		return err
	}
	where := "stdout"
	if req.out != "" {
		where = req.out
	}
	fmt.Fprintf(env.Stderr, "exported %d events to %s in %s; last event at position %s; the export covers the log through %s: continue with --from %s\n",
		written, where, time.Since(started).Round(time.Millisecond), orNone(cursor.String()), last, last)
	if refused > 0 {
		fmt.Fprintf(env.Stderr, "%d events exported as stored: an upcaster or a personal field refused them (allEvents' upcastError says why)\n", refused)
	}
	return nil
}

// resolveExportBounds turns --from and --to into the position to read after and the last
// position to export (inclusive), and waits until the log is readable up to the latter.
// Without --to, the end is the horizon as the export starts: the export is a prefix of the log
// as it stood then, whatever is appended while it runs.
func resolveExportBounds(ctx context.Context, store *eventstore.Store, req exportRequest) (after, last eventstore.Position, err error) {
	asOf := func(b *exportBound) (eventstore.Position, error) {
		if b.time.IsZero() {
			return b.pos, nil
		}
		p, err := store.AsOf(ctx, b.time, exportSettle)
		return p.Before(), err // the log as of t ends just before p
	}
	if req.from != nil {
		if after, err = asOf(req.from); err != nil {
			return after, last, err
		}
	}
	if req.to == nil {
		last, err = store.Horizon(ctx)
		return after, last, err
	}
	if last, err = asOf(req.to); err != nil {
		return after, last, err
	}
	readable, err := store.WaitReadable(ctx, last, exportSettle)
	if err != nil || readable {
		return after, last, err
	}
	why := "it is beyond the end of the log"
	if hs, err := store.HeldBackBy(ctx, 1); err == nil && len(hs) > 0 {
		h := hs[0]
		why += fmt.Sprintf(", or the transaction of pid %d (database %s, user %s, %s since %s) still holds back the global order", h.PID, h.Database, h.User, h.State, h.Since.Format(time.RFC3339))
	}
	return after, last, &eventstore.ValidationError{Field: "to", Reason: fmt.Sprintf("%s is not readable yet after %s: %s", req.to.text, exportSettle, why)}
}

// exportOutput is where an export writes: stdout, or FILE.partial renamed to FILE at the end.
type exportOutput struct {
	buf       *bufio.Writer
	file      *os.File // nil for stdout
	tmp, path string
	done      bool
}

func openExportOutput(env *cli.Env, path string) (*exportOutput, error) {
	if path == "" {
		return &exportOutput{buf: bufio.NewWriterSize(env.Stdout, 1<<16)}, nil
	}
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("export: create %s: %w (a leftover of an export that stopped may be moved away or deleted)", tmp, err)
	}
	return &exportOutput{buf: bufio.NewWriterSize(f, 1<<16), file: f, tmp: tmp, path: path}, nil
}

// flush writes what is buffered and, for a file, syncs it.
func (o *exportOutput) flush() error {
	if err := o.buf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", o.name(), err)
	}
	if o.file != nil {
		if err := o.file.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", o.tmp, err)
		}
	}
	return nil
}

func (o *exportOutput) name() string {
	if o.file == nil {
		return "stdout"
	}
	return o.tmp
}

// failed handles an error writing the output: a file that may end in half an event is removed.
func (o *exportOutput) failed(err error) error {
	if o.file != nil {
		_ = o.file.Close()
		_ = os.Remove(o.tmp)
		o.done = true
	}
	return fmt.Errorf("export to %s: %w", o.name(), err)
}

// commit flushes, syncs and renames FILE.partial to FILE, then syncs the directory.
func (o *exportOutput) commit() error {
	if err := o.flush(); err != nil {
		return o.failed(err)
	}
	if o.file == nil {
		return nil
	}
	o.done = true
	if err := o.file.Close(); err != nil {
		_ = os.Remove(o.tmp)
		return fmt.Errorf("close %s: %w", o.tmp, err)
	}
	if err := os.Link(o.tmp, o.path); err != nil { // unlike rename, never replaces a file made meanwhile
		_ = os.Remove(o.tmp)
		return fmt.Errorf("export: %s: %w", o.path, err)
	}
	if err := os.Remove(o.tmp); err != nil {
		return fmt.Errorf("export: remove %s: %w", o.tmp, err)
	}
	if dir, err := os.Open(filepath.Dir(o.path)); err == nil {
		err = dir.Sync()
		_ = dir.Close()
		if err != nil {
			return fmt.Errorf("sync the directory of %s: %w", o.path, err)
		}
	}
	return nil
}

// abandon closes a file the export neither committed nor removed: an interrupted export's
// FILE.partial stays, whole events only, for the operator to keep or remove.
func (o *exportOutput) abandon() {
	if o.file != nil && !o.done {
		_ = o.file.Close()
	}
}

// eventEncoder writes events in one of the export formats.
type eventEncoder interface {
	header() error
	event(e *eventstore.RecordedEvent) error
	flush() error
}

func newEventEncoder(format string, w io.Writer) eventEncoder {
	if format == "csv" {
		return &csvEncoder{w: csv.NewWriter(w)}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &ndjsonEncoder{enc: enc}
}

// exportedEvent is one NDJSON line: the envelope, with data and metadata as JSON.
type exportedEvent struct {
	Position      string          `json:"position"`
	StreamID      string          `json:"streamId"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	ID            string          `json:"id"`
	RecordedAt    string          `json:"recordedAt"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
}

type ndjsonEncoder struct{ enc *json.Encoder }

func (n *ndjsonEncoder) header() error { return nil }

func (n *ndjsonEncoder) event(e *eventstore.RecordedEvent) error {
	return n.enc.Encode(exportedEvent{
		Position: e.Position.String(), StreamID: e.StreamID, Version: e.Version, Type: e.Type,
		SchemaVersion: e.SchemaVersion, ID: e.ID.String(), RecordedAt: exportTime(e.RecordedAt),
		Data: jsonOrNull(e.Data), Metadata: jsonOrNull(e.Metadata),
	})
}

func (n *ndjsonEncoder) flush() error { return nil }

// csvHeader names the CSV columns: the envelope flattened, data and metadata as JSON text.
var csvHeader = []string{"position", "stream_id", "version", "type", "schema_version", "event_id", "recorded_at", "data", "metadata"} //nolint:gochecknoglobals // a constant list

type csvEncoder struct {
	w   *csv.Writer
	row [9]string
}

func (c *csvEncoder) header() error { return c.w.Write(csvHeader) }

func (c *csvEncoder) event(e *eventstore.RecordedEvent) error {
	c.row = [9]string{e.Position.String(), e.StreamID, strconv.FormatInt(e.Version, 10), e.Type,
		strconv.Itoa(e.SchemaVersion), e.ID.String(), exportTime(e.RecordedAt), string(jsonOrNull(e.Data)), string(jsonOrNull(e.Metadata))}
	return c.w.Write(c.row[:])
}

func (c *csvEncoder) flush() error {
	c.w.Flush()
	return c.w.Error()
}

func exportTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func jsonOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
