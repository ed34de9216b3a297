package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/transport/export"
)

// exported is one event as an export file holds it, whatever the format.
type exported struct {
	Position, StreamID, Type, ID, RecordedAt string
	Version                                  int64
	SchemaVersion                            int
	Data, Metadata                           any
	Tags                                     []string
}

func parseNDJSON(t *testing.T, b []byte) []exported {
	t.Helper()
	var out []exported
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Position      string          `json:"position"`
			StreamID      string          `json:"streamId"`
			Version       int64           `json:"version"`
			Type          string          `json:"type"`
			SchemaVersion int             `json:"schemaVersion"`
			ID            string          `json:"id"`
			RecordedAt    string          `json:"recordedAt"`
			Data          json.RawMessage `json:"data"`
			Metadata      json.RawMessage `json:"metadata"`
			Tags          []string        `json:"tags"`
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %d of the NDJSON export: %v: %s", len(out)+1, err, sc.Text())
		}
		if l.Tags == nil {
			t.Fatalf("line %d of the NDJSON export has no tags list: %s", len(out)+1, sc.Text())
		}
		out = append(out, exported{l.Position, l.StreamID, l.Type, l.ID, l.RecordedAt, l.Version, l.SchemaVersion, decodeJSON(t, l.Data), decodeJSON(t, l.Metadata), l.Tags})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseCSV(t *testing.T, b []byte) []exported {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV export does not parse: %v", err)
	}
	if len(records) == 0 || !reflect.DeepEqual(records[0], export.CSVHeader()) {
		t.Fatalf("CSV header: got %v, want %v", records[:min(1, len(records))], export.CSVHeader())
	}
	var out []exported
	for _, r := range records[1:] {
		v, err1 := strconv.ParseInt(r[2], 10, 64)
		sv, err2 := strconv.Atoi(r[4])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("CSV row %v: %v", r, err)
		}
		var tags []string
		if err := json.Unmarshal([]byte(r[9]), &tags); err != nil || tags == nil {
			t.Fatalf("CSV row %v: tags %q: %v", r, r[9], err)
		}
		out = append(out, exported{r[0], r[1], r[3], r[5], r[6], v, sv, decodeJSON(t, []byte(r[7])), decodeJSON(t, []byte(r[8])), tags})
	}
	return out
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%q is not JSON: %v", b, err)
	}
	return v
}

// readAllOf pages the store's ReadAll (what allEvents serves) through the whole log.
func readAllOf(t *testing.T, store *eventstore.Store, opts eventstore.ReadAllOptions) []exported {
	t.Helper()
	var out []exported
	opts.Max = 1000
	for {
		page, err := store.ReadAll(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			out = append(out, exported{e.Position.String(), e.StreamID, e.Type, e.ID.String(), e.RecordedAt.UTC().Format(time.RFC3339Nano),
				e.Version, e.SchemaVersion, decodeJSON(t, e.Data), decodeJSON(t, e.Metadata), append([]string{}, e.Tags...)})
			opts.After = e.Position
		}
		if len(page) < opts.Max {
			return out
		}
	}
}

func sameEvents(t *testing.T, what string, got, want []exported) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s: event %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
			return
		}
	}
}

// exportCLI runs strata export in this process and returns its exit code, stdout and stderr.
func exportCLI(ctx context.Context, url string, args ...string) (int, []byte, string) {
	var stdout, stderr bytes.Buffer
	env := envOf(map[string]string{"DATABASE_URL": url, "STRATA_LOG_LEVEL": "warn"})
	code := Main(ctx, append([]string{"export"}, args...), &stdout, &stderr, env)
	return code, stdout.Bytes(), stderr.String()
}

var resumeRe = regexp.MustCompile(`continue with --from ([0-9a-f]{32})`) //nolint:gochecknoglobals // a compiled constant

func resumeFrom(t *testing.T, stderr string) string {
	t.Helper()
	m := resumeRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no resume position in:\n%s", stderr)
	}
	return m[1]
}

// appendVaried appends events of three categories and several types, with payloads that test
// quoting: commas, quotes, newlines, unicode, HTML characters; and waits until ReadAll shows
// them (a transaction anywhere in the cluster may hold back the global order for a moment).
func appendVaried(t *testing.T, store *eventstore.Store, tag string) {
	t.Helper()
	var last eventstore.Position
	tricky := []string{`plain`, `a, b, c`, `she said "hi"`, "two\nlines\r\nand a tab\t", `é ✓ 日本語 🚀`, `<b>&amp;</b>`, `back\slash`, `"`, ``}
	for i, s := range tricky {
		stream := []string{"order-", "user-", "note-"}[i%3] + tag + strconv.Itoa(i%4)
		events := []eventstore.EventData{}
		for j := range 1 + i%3 {
			data, _ := json.Marshal(map[string]any{"text": s, "n": i*10 + j, "nested": map[string]any{"list": []any{s, 1.5, true, nil}}})
			meta, _ := json.Marshal(map[string]any{"by": s, "tag": tag})
			events = append(events, eventstore.EventData{Type: []string{"Created", "Renamed", "Noted"}[j%3], Data: data, Metadata: meta, SchemaVersion: 1 + j%2})
		}
		res, err := store.Append(t.Context(), stream, eventstore.Any(), events)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	waitFor(t, "the appended events to be readable", func() bool {
		h, err := store.Horizon(t.Context())
		return err == nil && h.Compare(last) >= 0
	})
}

// An export read back, NDJSON to stdout and CSV to a file, is the log as ReadAll (allEvents)
// serves it: the same events in the same order, field by field, however tricky the payloads.
func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	store := eventstore.New(dbtest.PoolFor(t, url, 4), eventstore.Options{})
	appendVaried(t, store, "a")
	appendVaried(t, store, "b")
	want := readAllOf(t, store, eventstore.ReadAllOptions{})
	if len(want) < 30 {
		t.Fatalf("only %d events appended", len(want))
	}
	ctx := t.Context()

	code, stdout, stderr := exportCLI(ctx, url, "--batch", "7")
	if code != 0 {
		t.Fatalf("export exited %d:\n%s", code, stderr)
	}
	sameEvents(t, "ndjson", parseNDJSON(t, stdout), want)
	if !strings.Contains(stderr, fmt.Sprintf("exported %d events to stdout", len(want))) {
		t.Errorf("stderr does not say how many events were exported:\n%s", stderr)
	}

	out := filepath.Join(t.TempDir(), "events.csv")
	code, stdout, stderr = exportCLI(ctx, url, "--format", "csv", "--out", out, "--batch", "5")
	if code != 0 {
		t.Fatalf("export exited %d:\n%s", code, stderr)
	}
	if len(stdout) != 0 {
		t.Errorf("an export to a file wrote %d bytes to stdout", len(stdout))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "csv", parseCSV(t, b), want)
	if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
		t.Errorf("%s.partial is left behind (%v)", out, err)
	}
	// The file exists now: a second export to it is refused, and leaves it alone.
	if code, _, stderr := exportCLI(ctx, url, "--out", out); code != 2 || !strings.Contains(stderr, "exists") {
		t.Errorf("export to an existing file: exit %d, stderr:\n%s", code, stderr)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, b) {
		t.Error("a refused export changed the existing file")
	}
	// So is one to a file whose .partial an export that stopped left behind.
	other := filepath.Join(t.TempDir(), "other.csv")
	if err := os.WriteFile(other+".partial", []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := exportCLI(ctx, url, "--out", other); code != 2 || !strings.Contains(stderr, "other.csv.partial exists") {
		t.Errorf("export over a .partial: exit %d, stderr:\n%s", code, stderr)
	}
	if kept, _ := os.ReadFile(other + ".partial"); string(kept) != "kept" {
		t.Errorf("a refused export changed the .partial file: %q", kept)
	}
}

// --category and --types keep what ReadAll's filters keep; --from (exclusive) and --to
// (inclusive) bound by position, and by time the log as of that time (Store.AsOf); an export
// up to a position continued from the position it prints is the whole export.
func TestExportFiltersBoundsAndResume(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	store := eventstore.New(dbtest.PoolFor(t, url, 4), eventstore.Options{})
	ctx := t.Context()
	appendVaried(t, store, "early")
	time.Sleep(50 * time.Millisecond)
	middle := time.Now()
	time.Sleep(50 * time.Millisecond)
	appendVaried(t, store, "late")
	all := readAllOf(t, store, eventstore.ReadAllOptions{})
	early := 0
	for early < len(all) && all[early].Metadata.(map[string]any)["tag"] == "early" {
		early++
	}
	run := func(args ...string) ([]exported, string) {
		t.Helper()
		code, stdout, stderr := exportCLI(ctx, url, args...)
		if code != 0 {
			t.Fatalf("export %v exited %d:\n%s", args, code, stderr)
		}
		return parseNDJSON(t, stdout), stderr
	}
	for _, tc := range []struct {
		args []string
		opts eventstore.ReadAllOptions
	}{
		{[]string{"--category", "order"}, eventstore.ReadAllOptions{Category: "order"}},
		{[]string{"--types", "Renamed,Noted"}, eventstore.ReadAllOptions{Types: []string{"Renamed", "Noted"}}},
		{[]string{"--category", "user", "--types", "Created"}, eventstore.ReadAllOptions{Category: "user", Types: []string{"Created"}}},
	} {
		got, _ := run(append(tc.args, "--batch", "3")...)
		want := readAllOf(t, store, tc.opts)
		if len(want) == 0 {
			t.Fatalf("%v: nothing to export", tc.args)
		}
		sameEvents(t, strings.Join(tc.args, " "), got, want)
	}

	// By position: --to is inclusive, --from exclusive.
	got, _ := run("--from", all[3].Position, "--to", all[10].Position)
	sameEvents(t, "from/to positions", got, all[4:11])
	// By time: the log as of middle is the early events.
	got, _ = run("--to", middle.Format(time.RFC3339Nano))
	sameEvents(t, "--to time", got, all[:early])
	got, _ = run("--from", middle.Format(time.RFC3339Nano))
	sameEvents(t, "--from time", got, all[early:])

	// Resume: up to a position, then on from the position printed; and a finished export
	// continued from its printed position finds nothing more until more is appended.
	first, stderr := run("--to", all[12].Position, "--batch", "4")
	second, stderr2 := run("--from", resumeFrom(t, stderr), "--batch", "4")
	sameEvents(t, "resumed export", append(first, second...), all)
	appendVaried(t, store, "later")
	third, _ := run("--from", resumeFrom(t, stderr2))
	sameEvents(t, "after more appends", third, readAllOf(t, store, eventstore.ReadAllOptions{})[len(all):])

	// With a filter, the printed position continues the filtered export as exactly.
	part, stderr := run("--category", "note", "--to", all[5].Position)
	rest, _ := run("--category", "note", "--from", resumeFrom(t, stderr))
	sameEvents(t, "resumed filtered export", append(part, rest...), readAllOf(t, store, eventstore.ReadAllOptions{Category: "note"}))
}

// A command line export cannot act on is refused with exit code 2 and a message saying what is
// wrong, before any file is made.
func TestExportRefusesBadInput(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	store := eventstore.New(dbtest.PoolFor(t, url, 4), eventstore.Options{})
	appendVaried(t, store, "x")
	all := readAllOf(t, store, eventstore.ReadAllOptions{})
	future := time.Now().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown format", []string{"--format", "xml"}, "--format must be ndjson or csv"},
		{"from after to", []string{"--from", all[5].Position, "--to", all[2].Position}, "is after --to"},
		{"from time after to time", []string{"--from", "2024-02-01T00:00:00Z", "--to", "2024-01-01T00:00:00Z"}, "is after --to"},
		{"bad position", []string{"--from", "not-a-position"}, "neither a position"},
		{"upper-case position", []string{"--to", "00000000000000AB0000000000000001"}, "neither a position"}, // cursors are lower-case hex
		{"time in the future", []string{"--to", future}, "in the future"},
		{"batch zero", []string{"--batch", "0"}, "--batch must be from 1"},
		{"batch too big", []string{"--batch", "10001"}, "--batch must be from 1"},
		{"bad category", []string{"--category", "a\x00b"}, "category"},
		{"to beyond the log", []string{"--to", "7fffffffffffffff0000000000000001"}, "not readable yet"},
		{"from beyond the log", []string{"--from", "7fffffffffffffff0000000000000001"}, "is after the end of the log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out.ndjson")
			code, stdout, stderr := exportCLI(t.Context(), url, append(tc.args, "--out", out)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q in stderr:\n%s", code, tc.want, stderr)
			}
			if len(stdout) != 0 {
				t.Errorf("stdout: %q", stdout)
			}
			for _, f := range []string{out, out + ".partial"} {
				if _, err := os.Stat(f); !os.IsNotExist(err) {
					t.Errorf("%s was made (%v)", filepath.Base(f), err)
				}
			}
		})
	}
}

// lineCounter counts the lines written to it and keeps nothing.
type lineCounter struct{ n int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// insertBulk writes events n of [from, to) straight into the events table, many events fast,
// and waits until ReadAll can see them all.
func insertBulk(t *testing.T, url string, from, to int) {
	t.Helper()
	pool := dbtest.PoolFor(t, url, 1)
	_, err := pool.Exec(t.Context(), `INSERT INTO events (event_id, stream_id, version, type, data)
SELECT gen_random_uuid(), 'bulk-' || (g / 100), g % 100 + 1, 'Bulk', jsonb_build_object('n', g, 'pad', repeat('x', 400))
FROM generate_series($1::int, $2::int - 1) g`, from, to)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the inserted events to be readable", func() bool {
		var visible int
		err := pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())`).Scan(&visible)
		return err == nil && visible == to
	})
}

// The export's memory does not grow with the log: the peak resident size of a strata process
// exporting 4N events stays within 1.5 times that of one exporting N (an export that held its
// events would need several times more). An export stopped by SIGINT leaves FILE.partial of
// whole events and prints the position that continues it exactly.
func TestExportMemoryStaysFlatAndResumesAfterInterrupt(t *testing.T) {
	t.Parallel()
	bin := buildStrata(t)
	url := dbtest.URL(t)
	const n = 50_000
	peak := func() (int64, int) {
		t.Helper()
		var stderr bytes.Buffer
		var lines lineCounter
		cmd := exec.CommandContext(t.Context(), bin, "export", "--database-url", url, "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = &lines, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("export: %v\n%s", err, stderr.String())
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Fatal("no resource usage of the export process")
		}
		return ru.Maxrss, lines.n // kilobytes on Linux
	}
	insertBulk(t, url, 0, n)
	small, lines := peak()
	if lines != n {
		t.Fatalf("exported %d events of %d", lines, n)
	}
	insertBulk(t, url, n, 4*n)
	large, lines := peak()
	if lines != 4*n {
		t.Fatalf("exported %d events of %d", lines, 4*n)
	}
	t.Logf("peak resident size: %d kB for %d events, %d kB for %d", small, n, large, 4*n)
	if float64(large) > 1.5*float64(small) {
		t.Errorf("peak resident size grew from %d kB (%d events) to %d kB (%d events)", small, n, large, 4*n)
	}

	// Interrupted after its first progress line (small pages keep it running for seconds).
	out := filepath.Join(t.TempDir(), "events.ndjson")
	cmd := exec.CommandContext(t.Context(), bin, "export", "--database-url", url, "--log-level", "warn", "--out", out, "--batch", "20")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pr)
	signalled := false
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = pw.Close()
		done <- err
	}()
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if !signalled && strings.HasPrefix(sc.Text(), "exporting:") {
			signalled = true
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-done; err == nil || !signalled {
		t.Fatalf("the export was not interrupted (exit %v, signalled %v):\n%s", err, signalled, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an interrupted export made %s (%v)", out, err)
	}
	b, err := os.ReadFile(out + ".partial")
	if err != nil {
		t.Fatalf("an interrupted export left no %s.partial: %v\n%s", out, err, stderr.String())
	}
	part := parseNDJSON(t, b)
	from := resumeFrom(t, stderr.String())
	if len(part) == 0 || len(part) == 4*n || part[len(part)-1].Position != from {
		t.Fatalf("the partial file holds %d events, ending at %v; the resume position is %s", len(part), part[len(part)-1:], from)
	}
	var lines2 lineCounter
	rest := exec.CommandContext(t.Context(), bin, "export", "--database-url", url, "--log-level", "warn", "--from", from)
	var restErr bytes.Buffer
	rest.Stdout, rest.Stderr = &lines2, &restErr
	if err := rest.Run(); err != nil {
		t.Fatalf("resumed export: %v\n%s", err, restErr.String())
	}
	if len(part)+lines2.n != 4*n {
		t.Errorf("interrupted after %d events, resumed with %d: %d in all, want %d", len(part), lines2.n, len(part)+lines2.n, 4*n)
	}
}

// An export carries personal fields as allEvents shows them: opened for a subject that is
// remembered, "[redacted]" for one that was forgotten; never the envelopes stored.
func TestExportOpensPersonalFieldsAndRedactsForgottenOnes(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 4)
	store := eventstore.New(pool, storeOptions(config.Config{}))
	ctx := t.Context()
	ids := []string{uuid.NewString(), uuid.NewString()}
	var last eventstore.Position
	for i, id := range ids {
		data, _ := json.Marshal(user.Registered{UserID: id, Name: "Zoë, \"Z\"", Email: fmt.Sprintf("zoe%d@example.com", i)})
		events := []eventstore.EventData{{Type: user.TypeRegistered, Data: data}}
		if err := store.Seal(ctx, user.StreamID(id), events); err != nil {
			t.Fatal(err)
		}
		res, err := store.Append(ctx, user.StreamID(id), eventstore.NoStream(), events)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	if err := store.Forget(ctx, ids[1], user.StreamID(ids[1])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the appended events to be readable", func() bool {
		h, err := store.Horizon(ctx)
		return err == nil && h.Compare(last) >= 0
	})
	var stored string
	if err := pool.QueryRow(ctx, `SELECT data->>'email' FROM events WHERE stream_id = $1`, user.StreamID(ids[0])).Scan(&stored); err != nil || strings.Contains(stored, "@") {
		t.Fatalf("the email is stored as %q (%v), not sealed", stored, err)
	}

	for _, format := range []string{"ndjson", "csv"} {
		code, stdout, stderr := exportCLI(ctx, url, "--format", format)
		if code != 0 {
			t.Fatalf("export exited %d:\n%s", code, stderr)
		}
		got := parseNDJSON
		if format == "csv" {
			got = parseCSV
		}
		events := got(t, stdout)
		sameEvents(t, format, events, readAllOf(t, store, eventstore.ReadAllOptions{}))
		if len(events) != 2 {
			t.Fatalf("%s: %d events exported, want 2", format, len(events))
		}
		for i, want := range []string{"zoe0@example.com", eventstore.Redacted} {
			if email := events[i].Data.(map[string]any)["email"]; email != want {
				t.Errorf("%s: event %d exports email %v, want %q", format, i, email, want)
			}
		}
	}
}
