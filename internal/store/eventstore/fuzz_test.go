package eventstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// These fuzz targets are in package eventstore because validation (prepare, validateObject) is
// unexported. They need no database: prepare runs on a Store without a pool, and refuses or
// accepts before anything would be sent. The seed corpus is in testdata/fuzz.

// maxErrorLen bounds an error about a refused input. The parsers quote at most 64 bytes of what
// they refuse, so a hostile megabyte never comes back in a message (or a log line).
const maxErrorLen = 512

// checkInvalid fails t unless err is the store's refusal of bad input, naming a field that
// satisfies fieldOK.
func checkInvalid(t *testing.T, err error, fieldOK func(string) bool) {
	t.Helper()
	var v *ValidationError
	if !errors.As(err, &v) || !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("error %v (%T) is not a *ValidationError matching ErrInvalidInput", err, err)
	}
	if !fieldOK(v.Field) || v.Reason == "" {
		t.Fatalf("error names field %q with reason %q", v.Field, v.Reason)
	}
	if n := len(err.Error()); n > maxErrorLen {
		t.Fatalf("error message is %d bytes long, more than %d", n, maxErrorLen)
	}
}

// FuzzParsePosition checks the cursor of allEvents and of a stream's events. A cursor is parsed
// only when Position.String could have produced it, so every accepted cursor prints back as
// itself; anything else is a ValidationError on "position".
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{
		"",
		Position{tx: 1, seq: 1}.String(),
		Position{tx: 1<<64 - 1, seq: 1<<63 - 1}.String(),
		"0000000000000001000000000000002A",     // upper case decodes but would not sort like ours
		"0000000000000001800000000000000a",     // seq above int64
		"00000000000000000000000000000000",     // the zero position has no cursor but ""
		"000000000000000100000000000000",       // short
		"MDAwMDAwMDAwMDAwMDAwMTAwMDAwMDAw",     // base64 of hex: a forged cursor of the right length
		"0000000000000001000000000000002a\x00", // trailing NUL
		"0000000000000001000000000000002\xff",  // invalid UTF-8
		strings.Repeat("0", 1000) + "1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		var q Position
		qErr := q.UnmarshalText([]byte(s))
		if (err == nil) != (qErr == nil) || q != p {
			t.Fatalf("UnmarshalText(%q) = %v, %v; ParsePosition = %v, %v", s, q, qErr, p, err)
		}
		if err != nil {
			checkInvalid(t, err, func(f string) bool { return f == "position" })
			if !p.IsZero() {
				t.Fatalf("ParsePosition(%q) refused it but returned %+v", s, p)
			}
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("ParsePosition(%q) = %+v, which prints as %q", s, p, got)
		}
		if p.IsZero() != (s == "") {
			t.Fatalf("ParsePosition(%q) = %+v: only the empty cursor is the zero position", s, p)
		}
		if p.seq < 0 {
			t.Fatalf("ParsePosition(%q) gave a negative sequence %d", s, p.seq)
		}
		if text, err := p.MarshalText(); err != nil || string(text) != s {
			t.Fatalf("MarshalText of %+v = %q, %v; want %q", p, text, err, s)
		}
	})
}

// FuzzPositionOrder checks what clients rely on when they compare cursors: the strings sort in
// the order of the positions they stand for, and each parses back to its position.
func FuzzPositionOrder(f *testing.F) {
	f.Add(uint64(1), int64(1), uint64(1), int64(2))
	f.Add(uint64(1), int64(1<<62), uint64(2), int64(1))
	f.Add(uint64(0), int64(0), uint64(1), int64(1))
	f.Add(uint64(1<<64-1), int64(1<<63-1), uint64(1<<64-1), int64(1<<63-2))
	f.Fuzz(func(t *testing.T, tx1 uint64, seq1 int64, tx2 uint64, seq2 int64) {
		if seq1 < 0 || seq2 < 0 {
			return // the database hands out positive sequence numbers only
		}
		p, q := Position{tx: tx1, seq: seq1}, Position{tx: tx2, seq: seq2}
		if got, want := strings.Compare(p.String(), q.String()), p.Compare(q); got != want {
			t.Fatalf("cursors %q and %q compare %d, positions %+v and %+v compare %d", p.String(), q.String(), got, p, q, want)
		}
		if p.Compare(q) != -q.Compare(p) {
			t.Fatalf("Compare is not antisymmetric on %+v and %+v", p, q)
		}
		for _, pos := range []Position{p, q} {
			if back, err := ParsePosition(pos.String()); err != nil || back != pos {
				t.Fatalf("ParsePosition(%q) = %+v, %v; want %+v", pos.String(), back, err, pos)
			}
		}
	})
}

// isObject is an independent statement of what validateObject accepts: JSON text that
// encoding/json decodes into a map, which only an object does (null decodes into a nil map),
// nesting no deeper than MaxJSONDepth (measured by decoding, level by level).
func isObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil && decodedDepth(b) <= MaxJSONDepth
}

// decodedDepth measures nesting by decoding: an object or array is one level plus its deepest
// member.
func decodedDepth(b []byte) int {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return 0
	}
	var depth func(any) int
	depth = func(v any) int {
		d := 0
		switch v := v.(type) {
		case map[string]any:
			for _, m := range v {
				d = max(d, depth(m))
			}
			return d + 1
		case []any:
			for _, m := range v {
				d = max(d, depth(m))
			}
			return d + 1
		}
		return 0
	}
	return depth(v)
}

// jsonSeeds are payloads worth starting from, hostile ones included. The database refuses some
// that validation lets through (an escaped NUL, invalid UTF-8 in a string, a number outside
// jsonb's range); Append turns that refusal into a ValidationError too (TestAppendValidation).
func jsonSeeds() []string {
	return []string{
		`{}`,
		` {"a":1} `,
		`{"big":123456789012345678901234567890.5}`,
		`{"n":1e999999}`,
		`{"s":"a\u0000b"}`,
		"{\"s\":\"a\x00b\"}",
		"{\"s\":\"\xff\xfe\"}",
		`{"s":"\ud800"}`,
		`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{"a":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`,
		`{"a":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`,
		`{"a":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`,
		`{"a":"[[[[\"{{{"}`,
		`{"a":1,"a":2}`,
		`[]`, `null`, `"x"`, `12`, ``, ` `, `{`, `{}{}`, `{} x`, "\ufeff{}",
	}
}

// FuzzValidateObject checks the JSON check on event data and metadata: it accepts exactly the
// JSON objects, refuses everything else with a ValidationError on the field it was given, and
// leaves the caller's bytes alone.
func FuzzValidateObject(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		before := bytes.Clone(b)
		err := validateObject("data", b)
		if !bytes.Equal(b, before) {
			t.Fatalf("validateObject changed its input from %q to %q", before, b)
		}
		if want := isObject(b); (err == nil) != want {
			t.Fatalf("validateObject(%q) = %v; a JSON object: %v", b, err, want)
		}
		if err != nil {
			checkInvalid(t, err, func(f string) bool { return f == "data" })
		}
	})
}

// Limits small enough for the fuzzer to reach.
const (
	fuzzMaxEvents    = 2
	fuzzMaxEventSize = 256
)

// validName is an independent statement of validateName's rule.
func validName(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// FuzzPrepare checks every check an append runs before it sends anything: stream id, expected
// version, number of events, type, schema version, data, metadata, size. An append is accepted
// exactly when each holds, the accepted input is what the caller gave (metadata nil becoming
// {}, schema version 0 becoming 1, fresh distinct ids), a refusal is a ValidationError on a
// field of the append, and the same call always gets the same answer.
func FuzzPrepare(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add("order-1", false, int64(0), uint8(1), "OrderCreated", 0, []byte(s), []byte(`{"actor":"ann"}`), false)
		f.Add("order-1", true, int64(3), uint8(2), "OrderPaid", 2, []byte(`{}`), []byte(s), false)
	}
	f.Add("", true, int64(0), uint8(1), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-\x00", true, int64(0), uint8(1), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-\xff", true, int64(0), uint8(1), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", false, int64(-1), uint8(1), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", true, int64(0), uint8(0), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", true, int64(0), uint8(3), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", true, int64(0), uint8(1), "Order\u0085Paid", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", true, int64(0), uint8(1), "T", -1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", true, int64(0), uint8(1), "T", 1<<31, []byte(`{}`), []byte(nil), true)
	f.Add(strings.Repeat("x", 257), true, int64(0), uint8(1), "T", 1, []byte(`{}`), []byte(nil), true)
	f.Add("order-1", true, int64(0), uint8(1), "T", 1, []byte(`{"s":"`+strings.Repeat("x", 240)+`"}`), []byte(`{"m":1}`), false)

	s := New(nil, Options{MaxEventsPerAppend: fuzzMaxEvents, MaxEventSize: fuzzMaxEventSize})
	f.Fuzz(func(t *testing.T, streamID string, anyVersion bool, version int64, count uint8, typ string, schemaVersion int, data, metadata []byte, nilMetadata bool) {
		expected := Exactly(version)
		if anyVersion {
			expected = Any()
		}
		md := json.RawMessage(metadata)
		if nilMetadata {
			md = nil
		}
		events := make([]EventData, count%(fuzzMaxEvents+2)) // 0 and one over the limit included
		for i := range events {
			events[i] = EventData{Type: typ, SchemaVersion: schemaVersion, Data: data, Metadata: md}
		}

		in, err := s.prepare(streamID, expected, events)

		mdLen := len(md)
		if md == nil {
			mdLen = len(`{}`) // what nil metadata is stored as, and counted as
		}
		sizeOK := len(data)+mdLen <= fuzzMaxEventSize
		want := validName(streamID) && (anyVersion || version >= 0) &&
			len(events) >= 1 && len(events) <= fuzzMaxEvents &&
			validName(typ) && schemaVersion >= 0 && schemaVersion <= 1<<31-1 &&
			isObject(data) && (md == nil || isObject(md)) && sizeOK
		if (err == nil) != want {
			t.Fatalf("prepare(%q, %v, %d × {type %q, schema %d, data %q, metadata %q}) = %v; want accepted: %v",
				streamID, expected, len(events), typ, schemaVersion, data, md, err, want)
		}

		again, errAgain := s.prepare(streamID, expected, events)
		if fmt.Sprint(err) != fmt.Sprint(errAgain) {
			t.Fatalf("the same append got %v, then %v", err, errAgain)
		}

		if err != nil {
			checkInvalid(t, err, appendField)
			return
		}
		if len(in.ids) != len(events) || len(again.ids) != len(events) {
			t.Fatalf("%d events became %d ids", len(events), len(in.ids))
		}
		wantSchema := int32(max(schemaVersion, 1))
		wantMD := md
		if wantMD == nil {
			wantMD = json.RawMessage(`{}`)
		}
		for i := range events {
			if in.types[i] != typ || in.schemaVersions[i] != wantSchema || !bytes.Equal(in.data[i], data) || !bytes.Equal(in.metadata[i], wantMD) {
				t.Fatalf("event %d prepared as {%q %d %q %q}", i, in.types[i], in.schemaVersions[i], in.data[i], in.metadata[i])
			}
			if again.types[i] != in.types[i] || again.schemaVersions[i] != in.schemaVersions[i] ||
				!bytes.Equal(again.data[i], in.data[i]) || !bytes.Equal(again.metadata[i], in.metadata[i]) {
				t.Fatalf("event %d prepared differently the second time", i)
			}
		}
		ids := append(slices.Clone(in.ids), again.ids...)
		if slices.Contains(ids, uuid.Nil) || len(slices.Compact(slices.SortedFunc(slices.Values(ids), compareUUID))) != len(ids) {
			t.Fatalf("ids %v are not fresh and distinct", ids)
		}
		if !in.generatedIDs {
			t.Fatalf("ids were made here but generatedIDs is false")
		}
	})
}

// appendField reports whether f names an input of an append, as ValidationError.Field does.
func appendField(f string) bool {
	switch f {
	case "streamId", "expectedVersion", "events":
		return true
	}
	rest, ok := strings.CutPrefix(f, "events[")
	if !ok {
		return false
	}
	i, field, ok := strings.Cut(rest, "].")
	if !ok || i == "" || strings.Trim(i, "0123456789") != "" {
		return false
	}
	switch field {
	case "type", "schemaVersion", "data", "metadata", "id":
		return true
	}
	return false
}

func compareUUID(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
