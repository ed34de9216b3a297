package command_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// FuzzParseID checks the parser of every aggregate id a client sends, which is also the after
// cursor of users, orders and a user's orders. It accepts exactly the canonical lower-case uuids,
// returns them unchanged (so a cursor reads back as itself), and refuses anything else with a
// ValidationError on the field it was given, quoting a bounded part of the input. It needs no
// database. The seed corpus is in testdata/fuzz.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f60",
		"0B7E4F3E-8A51-4B8E-9D2F-3F1C2D4E5F60",
		"{0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f60}",
		"urn:uuid:0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f60",
		"0b7e4f3e8a514b8e9d2f3f1c2d4e5f60",
		"00000000-0000-0000-0000-000000000000",
		"0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f6\x00",
		"0b7e4f3e-8a51-4b8e-9d2f-3f1c2d4e5f6\xff",
		"MGI3ZTRmM2UtOGE1MS00YjhlLTlkMmYtM2YxYzJkNGU1ZjYw", // base64 of an id: a forged cursor
		"",
		strings.Repeat("\xff", 1000),
	} {
		f.Add(s)
	}
	canonical := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := command.ParseID("after", s)
		if want := canonical.MatchString(s); (err == nil) != want {
			t.Fatalf("ParseID(%q) = %q, %v; want accepted: %v", s, id, err, want)
		}
		if err != nil {
			var v *eventstore.ValidationError
			if !errors.As(err, &v) || !errors.Is(err, eventstore.ErrInvalidInput) || v.Field != "after" || v.Reason == "" {
				t.Fatalf("ParseID(%q): %v (%T) is not a ValidationError on after", s, err, err)
			}
			if id != "" {
				t.Fatalf("ParseID(%q) refused it but returned %q", s, id)
			}
			if n := len(err.Error()); n > 512 {
				t.Fatalf("ParseID's error is %d bytes long: it echoes too much of the input", n)
			}
			return
		}
		if id != s || uuid.MustParse(id).String() != s {
			t.Fatalf("ParseID(%q) = %q", s, id)
		}
	})
}
