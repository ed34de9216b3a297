package graph

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// FuzzHistoryPage checks the after cursor of a user's or order's history: an entry's version in
// decimal. It is in package graph because historyPage is unexported; it needs no database.
// Accepted cursors are exactly the ones the server hands out (the decimal form of a version, so
// each reads back as itself); a page starts right after the version, holds at most the default
// 20 entries and stays inside the history; the cursor of a page's last entry starts the next
// page where this one ended. Anything else is a ValidationError on after, quoting a bounded part
// of the input. The seed corpus is in testdata/fuzz.
func FuzzHistoryPage(f *testing.F) {
	for _, s := range []string{
		"", "0", "1", "20", "9223372036854775807", "9223372036854775808", "-1", "-0", "+5", "007",
		" 1", "1\x00", "\xff", "MQ==", "1e3", "0x10", strings.Repeat("9", 10000),
	} {
		f.Add(s, uint16(42))
	}
	f.Add("5", uint16(0))
	r := &Resolver{}
	const pageSize = 20 // the schema's default first of a history
	f.Fuzz(func(t *testing.T, after string, entries uint16) {
		n := int(entries)
		from, to, err := r.historyPage(context.Background(), n, nil, &after)
		v, atoiErr := strconv.Atoi(after)
		canonical := after == "" || atoiErr == nil && v >= 0 && strconv.Itoa(v) == after
		if (err == nil) != canonical {
			t.Fatalf("historyPage(after %q) = %d, %d, %v; want accepted: %v", after, from, to, err, canonical)
		}
		if err != nil {
			var ve *eventstore.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, eventstore.ErrInvalidInput) || ve.Field != "after" || ve.Reason == "" {
				t.Fatalf("historyPage(after %q): %v (%T) is not a ValidationError on after", after, err, err)
			}
			if l := len(err.Error()); l > 1024 { // 64 runes quoted take at most 640 bytes
				t.Fatalf("historyPage's error is %d bytes long: it echoes too much of the input", l)
			}
			return
		}
		if after == "" {
			v = 0
		}
		if from != min(v, n) || to != min(from+pageSize, n) {
			t.Fatalf("historyPage(after %q) of %d entries = [%d, %d)", after, n, from, to)
		}
		if to == from {
			return
		}
		// Entry i has version i+1, so the last entry's cursor is the decimal of to.
		next := strconv.Itoa(to)
		nextFrom, _, err := r.historyPage(context.Background(), n, nil, &next)
		if err != nil || nextFrom != to {
			t.Fatalf("the page [%d, %d) ends with cursor %q, which starts the next page at %d (%v)", from, to, next, nextFrom, err)
		}
	})
}
