package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/store/eventstore"
)

func valid() Options { return Options{Format: "ndjson", Batch: 1000} }

// Prepare refuses what cannot run, naming the flag, before the log is read or a file is made;
// it accepts positions and past times as bounds.
func TestPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists.ndjson")
	if err := os.WriteFile(exists, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "left.ndjson")
	if err := os.WriteFile(left+".partial", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const p1, p2 = "00000000000000ab0000000000000001", "00000000000000ab0000000000000002"
	future := time.Now().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string // "" accepts
	}{
		{"defaults", func(*Options) {}, ""},
		{"csv to a new file", func(o *Options) { o.Format, o.Out = "csv", filepath.Join(dir, "new.csv") }, ""},
		{"positions", func(o *Options) { o.From, o.To = p1, p2 }, ""},
		{"times", func(o *Options) { o.From, o.To = "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z" }, ""},
		{"unknown format", func(o *Options) { o.Format = "xml" }, `--format must be ndjson or csv, not "xml"`},
		{"batch zero", func(o *Options) { o.Batch = 0 }, "--batch must be from 1 to 10000, not 0"},
		{"batch too big", func(o *Options) { o.Batch = eventstore.DefaultMaxReadCount + 1 }, "--batch must be from 1"},
		{"bad position", func(o *Options) { o.From = "not-a-position" }, `--from "not-a-position" is neither a position`},
		{"upper-case position", func(o *Options) { o.To = strings.ToUpper(p1) }, "is neither a position"},
		{"time in the future", func(o *Options) { o.To = future }, "--to " + future + " is in the future"},
		{"from after to", func(o *Options) { o.From, o.To = p2, p1 }, "--from " + p2 + " is after --to " + p1},
		{"from time after to time", func(o *Options) { o.From, o.To = "2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z" }, "is after --to"},
		{"out exists", func(o *Options) { o.Out = exists }, "--out " + exists + " exists"},
		{"partial exists", func(o *Options) { o.Out = left }, left + ".partial exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := valid()
			tc.edit(&opts)
			req, err := Prepare(opts)
			if tc.want == "" {
				if err != nil || req == nil {
					t.Fatalf("Prepare(%+v) = %v, %v; want a request", opts, req, err)
				}
				return
			}
			var usage *UsageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Prepare(%+v) = %v; want a UsageError with %q", opts, err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new.csv.partial")); !os.IsNotExist(err) {
		t.Errorf("Prepare made a file (%v)", err)
	}
}

// A file output exists under its name only once committed; until then it is FILE.partial, which
// a second export refuses to take over. A failed one is removed, an abandoned one kept.
func TestOutputFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	o, err := openOutput(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.buf.WriteString("one\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := openOutput(nil, path); err == nil || !strings.Contains(err.Error(), "events.ndjson.partial") {
		t.Errorf("a second output on the same file: %v, want a refusal naming the .partial", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s exists before the commit (%v)", path, err)
	}
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
	o.abandon() // after a commit: nothing
	if b, err := os.ReadFile(path); err != nil || string(b) != "one\n" {
		t.Errorf("committed file: %q, %v", b, err)
	}
	if _, err := os.Stat(path + ".partial"); !os.IsNotExist(err) {
		t.Errorf("the .partial is left after the commit (%v)", err)
	}

	failed := filepath.Join(dir, "failed.csv")
	o, err = openOutput(nil, failed)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.failed(errors.New("disk full")); err == nil || !strings.Contains(err.Error(), "failed.csv.partial: disk full") {
		t.Errorf("failed: %v", err)
	}
	o.abandon()
	for _, f := range []string{failed, failed + ".partial"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is left after a failure (%v)", filepath.Base(f), err)
		}
	}

	stopped := filepath.Join(dir, "stopped.csv")
	o, err = openOutput(nil, stopped)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.buf.WriteString("whole\n"); err != nil {
		t.Fatal(err)
	}
	if err := o.flush(); err != nil {
		t.Fatal(err)
	}
	o.abandon()
	if b, err := os.ReadFile(stopped + ".partial"); err != nil || string(b) != "whole\n" {
		t.Errorf("abandoned .partial: %q, %v; want it kept with what was flushed", b, err)
	}
}

// Without a file, the output is the writer given, buffered until flushed.
func TestOutputStdout(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	o, err := openOutput(&stdout, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.buf.WriteString("line\n"); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 {
		t.Errorf("written before the flush: %q", stdout.String())
	}
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "line\n" || o.name() != "stdout" {
		t.Errorf("stdout %q, name %q", stdout.String(), o.name())
	}
}

// Both encoders carry the envelope and the payloads unchanged: CSV quotes what needs quoting,
// NDJSON leaves HTML characters alone, and an empty payload is null.
func TestEncoders(t *testing.T) {
	t.Parallel()
	pos, err := eventstore.ParsePosition("00000000000000ab0000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	e := eventstore.RecordedEvent{
		ID: uuid.MustParse("0190a6f4-0000-7000-8000-000000000001"), StreamID: "order-1", Version: 3, Position: pos,
		Type: "Noted", SchemaVersion: 2, Data: json.RawMessage(`{"text":"a, \"b\"\n<c>&"}`),
		RecordedAt: time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.FixedZone("x", 3600)),
		Tags:       []string{"course:1", `a "quoted", tag`},
	}
	var nd bytes.Buffer
	enc := newEncoder("ndjson", &nd)
	if err := errors.Join(enc.header(), enc.event(&e), enc.flush()); err != nil {
		t.Fatal(err)
	}
	want := `{"position":"00000000000000ab0000000000000001","streamId":"order-1","version":3,"type":"Noted","schemaVersion":2,` +
		`"id":"0190a6f4-0000-7000-8000-000000000001","recordedAt":"2024-05-06T06:08:09.123Z","data":{"text":"a, \"b\"\n<c>&"},"metadata":null,` +
		`"tags":["course:1","a \"quoted\", tag"]}` + "\n"
	if nd.String() != want {
		t.Errorf("ndjson:\n got %s\nwant %s", nd.String(), want)
	}

	var c bytes.Buffer
	enc = newEncoder("csv", &c)
	if err := errors.Join(enc.header(), enc.event(&e), enc.flush()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantRows := [][]string{CSVHeader(), {"00000000000000ab0000000000000001", "order-1", "3", "Noted", "2", "0190a6f4-0000-7000-8000-000000000001",
		"2024-05-06T06:08:09.123Z", `{"text":"a, \"b\"\n<c>&"}`, "null", `["course:1","a \"quoted\", tag"]`}}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("csv rows:\n got %q\nwant %q", rows, wantRows)
	}
}
