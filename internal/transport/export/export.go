// Package export writes the events of the global order between two bounds as NDJSON or CSV, to
// stdout or to a file that exists only complete, page by page (memory does not grow with the
// export), and says where to continue when it stops early: `strata export` without its flags.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// settle bounds how long an export waits for the log to be readable up to its --to bound
// (a transaction that began before a --to time, or one holding back the global order).
const settle = 10 * time.Second

// Options is an export as the command line asks for it; the messages of its refusals name the
// flags.
type Options struct {
	// From starts after this position (exclusive), or with the first event not in the log as
	// of this RFC 3339 time; empty: the start of the log.
	From string
	// To ends with this position (inclusive), or with the log as of this RFC 3339 time; empty:
	// the end of the log when the export starts.
	To string
	// Category and Types filter as allEvents does.
	Category string
	Types    []string
	// Format is ndjson or csv.
	Format string
	// Out is the file to write, through Out.partial; empty: stdout.
	Out string
	// Batch is how many events are read per page, 1 to eventstore.DefaultMaxReadCount.
	Batch int
}

// UsageError is an export that cannot run as asked: a flag's value, bounds the log does not
// have, a filter the store refuses. Nothing has been written when it is returned.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func refuse(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// Request is an export whose options have been checked, ready to run.
type Request struct {
	from, to *bound
	opts     eventstore.ReadAllOptions
	format   string
	out      string
}

// Prepare checks opts without reading the log: the format, the page size, the bounds, and that
// neither the file nor its .partial exists. What is wrong is a *UsageError.
func Prepare(opts Options) (*Request, error) {
	req := &Request{format: opts.Format, out: opts.Out, opts: eventstore.ReadAllOptions{Max: opts.Batch, Category: opts.Category, Types: opts.Types}}
	if opts.Format != "ndjson" && opts.Format != "csv" {
		return nil, refuse("--format must be ndjson or csv, not %q", opts.Format)
	}
	if opts.Batch < 1 || opts.Batch > eventstore.DefaultMaxReadCount {
		return nil, refuse("--batch must be from 1 to %d, not %d", eventstore.DefaultMaxReadCount, opts.Batch)
	}
	for _, b := range []struct {
		name, text string
		dst        **bound
	}{{"from", opts.From, &req.from}, {"to", opts.To, &req.to}} {
		if b.text == "" {
			continue
		}
		parsed, err := parseBound(b.name, b.text)
		if err != nil {
			return nil, refuse("%s", err)
		}
		*b.dst = &parsed
	}
	if f, t := req.from, req.to; f != nil && t != nil {
		if (f.time.IsZero() && t.time.IsZero() && f.pos.Compare(t.pos) > 0) || (!f.time.IsZero() && !t.time.IsZero() && f.time.After(t.time)) {
			return nil, refuse("--from %s is after --to %s", f.text, t.text)
		}
	}
	if opts.Out != "" {
		if _, err := os.Stat(opts.Out); err == nil {
			return nil, refuse("--out %s exists; choose another name or remove it", opts.Out)
		}
		if _, err := os.Stat(opts.Out + ".partial"); err == nil {
			return nil, refuse("%s.partial exists, left by an export that stopped (its last line says where it ends); move it away or remove it", opts.Out)
		}
	}
	return req, nil
}

// bound is a --from or --to value: a position cursor or a time.
type bound struct {
	text string
	pos  eventstore.Position
	time time.Time // zero for a position
}

func parseBound(name, s string) (bound, error) {
	s = strings.TrimSpace(s)
	if p, err := eventstore.ParsePosition(s); err == nil {
		return bound{text: s, pos: p}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.After(time.Now()) {
			return bound{}, fmt.Errorf("--%s %s is in the future", name, s)
		}
		return bound{text: s, time: t}, nil
	}
	return bound{}, fmt.Errorf("--%s %q is neither a position (32 hex digits, as allEvents and export print them) nor an RFC 3339 time", name, s)
}

// Run exports from store: it resolves the bounds, reads the first page (so that a filter the
// store refuses is refused before any file is made), then writes page after page to the file,
// or to stdout without one. Progress, the closing line and where to continue go to stderr.
// What cannot run as asked is a *UsageError, returned before anything is written.
func (req *Request) Run(ctx context.Context, store *eventstore.Store, stdout, stderr io.Writer) error {
	after, last, err := resolveBounds(ctx, store, req)
	if err != nil {
		if ve := (*eventstore.ValidationError)(nil); errors.As(err, &ve) {
			return refuse("%s", err)
		}
		return err
	}
	if after.Compare(last) > 0 {
		end := "the end of the log"
		if req.to != nil {
			end = "--to " + req.to.text
		}
		return refuse("--from %s is after %s", req.from.text, end)
	}
	opts := req.opts
	opts.After = after
	page, err := store.ReadAll(ctx, opts)
	if err != nil {
		if ve := (*eventstore.ValidationError)(nil); errors.As(err, &ve) {
			return refuse("%s", err)
		}
		return err
	}

	w, err := openOutput(stdout, req.out)
	if err != nil {
		return err
	}
	defer w.abandon()
	enc := newEncoder(req.format, w.buf)
	if err := enc.header(); err != nil {
		return w.failed(err)
	}

	started, lastProgress := time.Now(), time.Now()
	var written, refused int64
	cursor := after
	progress := func() {
		secs := time.Since(started).Seconds()
		fmt.Fprintf(stderr, "exporting: %d events, at position %s, %.0f events/s\n", written, orNone(cursor.String()), float64(written)/max(secs, 1e-3))
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
		fmt.Fprintf(stderr, "export stopped after %d events, %s holds them; continue with --from %s\n", written, where, orNone(cursor.String()))
		return fmt.Errorf("export stopped: %w", cause)
	}
	for {
		done := len(page) < opts.Max
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
		opts.After = cursor
		if page, err = store.ReadAll(ctx, opts); err != nil {
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
	fmt.Fprintf(stderr, "exported %d events to %s in %s; last event at position %s; the export covers the log through %s: continue with --from %s\n",
		written, where, time.Since(started).Round(time.Millisecond), orNone(cursor.String()), last, last)
	if refused > 0 {
		fmt.Fprintf(stderr, "%d events exported as stored: an upcaster or a personal field refused them (allEvents' upcastError says why)\n", refused)
	}
	return nil
}

// resolveBounds turns --from and --to into the position to read after and the last position to
// export (inclusive), and waits until the log is readable up to the latter. Without --to, the
// end is the horizon as the export starts: the export is a prefix of the log as it stood then,
// whatever is appended while it runs.
func resolveBounds(ctx context.Context, store *eventstore.Store, req *Request) (after, last eventstore.Position, err error) {
	asOf := func(b *bound) (eventstore.Position, error) {
		if b.time.IsZero() {
			return b.pos, nil
		}
		p, err := store.AsOf(ctx, b.time, settle)
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
	readable, err := store.WaitReadable(ctx, last, settle)
	if err != nil || readable {
		return after, last, err
	}
	why := "it is beyond the end of the log"
	if hs, err := store.HeldBackBy(ctx, 1); err == nil && len(hs) > 0 {
		h := hs[0]
		why += fmt.Sprintf(", or the transaction of pid %d (database %s, user %s, %s since %s) still holds back the global order", h.PID, h.Database, h.User, h.State, h.Since.Format(time.RFC3339))
	}
	return after, last, &eventstore.ValidationError{Field: "to", Reason: fmt.Sprintf("%s is not readable yet after %s: %s", req.to.text, settle, why)}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
