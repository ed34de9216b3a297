package eventstore

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefixEndIsTheLeastStringAboveThePrefixRange(t *testing.T) {
	t.Parallel()
	maxRune := string(utf8.MaxRune)
	tests := []struct{ prefix, want string }{
		{"", ""},
		{"order-", "order."},
		{"a", "b"},
		{"ordé", "ordê"},
		{"x\uD7FF", "x\uE000"}, // past the surrogates
		{"ab" + maxRune, "ac"},
		{maxRune + maxRune, ""},
	}
	for _, tt := range tests {
		got := prefixEnd(tt.prefix)
		if got != tt.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
		if got == "" || !utf8.ValidString(got) {
			continue
		}
		// Every string that starts with the prefix sorts below the end, and the end does not
		// start with the prefix.
		for _, tail := range []string{"", "\x00", "zzz", maxRune + maxRune} {
			if s := tt.prefix + tail; s >= got {
				t.Errorf("prefixEnd(%q) = %q, not above %q", tt.prefix, got, s)
			}
		}
		if strings.HasPrefix(got, tt.prefix) {
			t.Errorf("prefixEnd(%q) = %q starts with the prefix", tt.prefix, got)
		}
	}
}
