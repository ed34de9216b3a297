package export

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// encoder writes events in one of the export formats.
type encoder interface {
	header() error
	event(e *eventstore.RecordedEvent) error
	flush() error
}

func newEncoder(format string, w io.Writer) encoder {
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
	Tags          []string        `json:"tags"`
}

type ndjsonEncoder struct{ enc *json.Encoder }

func (n *ndjsonEncoder) header() error { return nil }

func (n *ndjsonEncoder) event(e *eventstore.RecordedEvent) error {
	return n.enc.Encode(exportedEvent{
		Position: e.Position.String(), StreamID: e.StreamID, Version: e.Version, Type: e.Type,
		SchemaVersion: e.SchemaVersion, ID: e.ID.String(), RecordedAt: formatTime(e.RecordedAt),
		Data: jsonOrNull(e.Data), Metadata: jsonOrNull(e.Metadata), Tags: tagsOf(e),
	})
}

func (n *ndjsonEncoder) flush() error { return nil }

// tagsOf is an event's tags for an export: an empty list rather than null when it has none.
func tagsOf(e *eventstore.RecordedEvent) []string {
	if e.Tags == nil {
		return []string{}
	}
	return e.Tags
}

// CSVHeader names the columns of a CSV export, its first row: the envelope flattened, data,
// metadata and tags (a list) as JSON text.
func CSVHeader() []string {
	return []string{"position", "stream_id", "version", "type", "schema_version", "event_id", "recorded_at", "data", "metadata", "tags"}
}

type csvEncoder struct {
	w   *csv.Writer
	row [10]string
}

func (c *csvEncoder) header() error { return c.w.Write(CSVHeader()) }

func (c *csvEncoder) event(e *eventstore.RecordedEvent) error {
	tags, err := json.Marshal(tagsOf(e))
	if err != nil {
		return err
	}
	c.row = [10]string{e.Position.String(), e.StreamID, strconv.FormatInt(e.Version, 10), e.Type,
		strconv.Itoa(e.SchemaVersion), e.ID.String(), formatTime(e.RecordedAt), string(jsonOrNull(e.Data)), string(jsonOrNull(e.Metadata)), string(tags)}
	return c.w.Write(c.row[:])
}

func (c *csvEncoder) flush() error {
	c.w.Flush()
	return c.w.Error()
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func jsonOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
