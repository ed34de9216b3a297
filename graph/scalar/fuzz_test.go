package scalar_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/strata-es/strata/graph/scalar"
	"github.com/strata-es/strata/internal/domain"
)

// The seed corpus of these targets is in testdata/fuzz; `make fuzz` runs each briefly.

// decodeVariable decodes a request variable as gqlgen's HTTP and WebSocket transports do: with
// UseNumber, so that every number reaches the scalar as its own digits (json.Number).
func decodeVariable(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// FuzzUnmarshalJSON checks the JSON scalar on every value a request variable can hold. The text
// it makes is valid UTF-8 JSON without a raw NUL, stands for the same value with every number
// in the digits the client sent (no float64 on the way), is a fixed point (re-reading it gives
// the same bytes), and MarshalJSON writes it back unchanged.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `true`, `"x"`, `[]`, `0`, `-0`, `1.0`, `1E+2`,
		`123456789012345678901234567890.5`,
		`{"big":12345678901234567890,"small":-1e-400,"huge":1e999999}`,
		`{"z":1,"a":[1,2.50,"3"],"m":{"<html>":"&"}}`,
		`{"a":1,"a":2}`,
		`"a\u0000b"`,
		"\"a\xffb\"",
		`"\ud800"`,
		"{\"\xfe\":\"\xc0\x80\"}",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat(`{"a":`, 1000) + `1` + strings.Repeat(`}`, 1000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeVariable(b)
		if err != nil {
			return // the transport refuses the request before any scalar sees it
		}
		raw, err := scalar.UnmarshalJSON(v)
		if err != nil {
			t.Fatalf("UnmarshalJSON of the variable %q: %v", b, err)
		}
		if !json.Valid(raw) || !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
			t.Fatalf("UnmarshalJSON of %q made %q: not valid UTF-8 JSON, or a raw NUL", b, raw)
		}
		if n, ok := v.(json.Number); ok && string(raw) != n.String() {
			t.Fatalf("the number %s became %s", n, raw)
		}
		back, err := decodeVariable(raw)
		if err != nil || !reflect.DeepEqual(back, v) {
			t.Fatalf("%q became %q, which reads back as %#v (%v), not %#v", b, raw, back, err, v)
		}
		again, err := scalar.UnmarshalJSON(back)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%q became %q, then %q (%v)", b, raw, again, err)
		}
		var out bytes.Buffer
		scalar.MarshalJSON(raw).MarshalGQL(&out)
		if !bytes.Equal(out.Bytes(), raw) {
			t.Fatalf("MarshalJSON wrote %q for %q", out.Bytes(), raw)
		}
	})
}

// FuzzUnmarshalJSONLiteral checks the JSON scalar on the values a literal in the query text
// becomes: gqlparser gives int64 for an integer and float64 for a float (before the scalar; use
// variables to keep more digits). The scalar adds no loss of its own: an int64 keeps its
// digits, a float64 reads back as the same float64, and NaN or an infinity is refused.
func FuzzUnmarshalJSONLiteral(f *testing.F) {
	f.Add(int64(0), 0.0, "", false)
	f.Add(int64(math.MaxInt64), 0.1, "a\x00b", true)
	f.Add(int64(math.MinInt64), math.MaxFloat64, "\xff", false)
	f.Add(int64(-1), math.SmallestNonzeroFloat64, "<&>\u2028", true)
	f.Add(int64(1), math.Copysign(0, -1), "\ud7ff", false)
	f.Add(int64(2), math.Inf(1), "x", false)
	f.Add(int64(3), math.NaN(), "x", false)
	f.Fuzz(func(t *testing.T, i int64, x float64, s string, b bool) {
		raw, err := scalar.UnmarshalJSON(i)
		if err != nil || string(raw) != strconv.FormatInt(i, 10) {
			t.Fatalf("UnmarshalJSON(%d) = %q, %v", i, raw, err)
		}

		raw, err = scalar.UnmarshalJSON(x)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if err == nil {
				t.Fatalf("UnmarshalJSON(%v) = %q; JSON has no such number", x, raw)
			}
		} else {
			got, perr := strconv.ParseFloat(string(raw), 64)
			if err != nil || perr != nil || math.Float64bits(got) != math.Float64bits(x) {
				t.Fatalf("UnmarshalJSON(%v) = %q (%v), which reads back as %v", x, raw, err, got)
			}
		}

		raw, err = scalar.UnmarshalJSON(map[string]any{"s": s, "b": b, "i": i, "n": nil})
		if err != nil || !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
			t.Fatalf("UnmarshalJSON of an object holding %q: %q, %v", s, raw, err)
		}
		v, err := decodeVariable(raw)
		m, _ := v.(map[string]any)
		var want strings.Builder
		for _, r := range s { // each byte of an invalid sequence gives U+FFFD, as encoding/json writes it
			want.WriteRune(r)
		}
		if err != nil || len(m) != 4 || m["s"] != want.String() || m["b"] != b || m["i"] != json.Number(strconv.FormatInt(i, 10)) || m["n"] != nil {
			t.Fatalf("object holding %q, %v, %d became %q, which reads back as %#v (%v)", s, b, i, raw, v, err)
		}
	})
}

// FuzzUnmarshalMoney checks the Money scalar: it accepts exactly the decimal strings with at
// most two fraction digits up to domain.MaxMoney, reads them exactly (the same value as the
// decimal, in cents), writes them back in a form it reads as the same amount, and refuses
// anything else, numbers included, with domain.ErrBadMoney.
func FuzzUnmarshalMoney(f *testing.F) {
	for _, s := range []string{
		"19.98", "0", "0.5", "007.10", "10000000000000", "10000000000000.00", "10000000000000.01",
		"99999999999999.99", "123456789012345678901234567890.5", "1.", ".5", "-1", "+1", "1e3",
		"1.234", " 1", "1\x00", "\xff", "١٢", "", "NaN",
	} {
		f.Add(s)
	}
	// moneyText is an independent statement of what a Money string looks like.
	moneyText := regexp.MustCompile(`^[0-9]+(\.[0-9]{1,2})?$`)
	maxMoney := new(big.Rat).SetInt64(int64(domain.MaxMoney))
	f.Fuzz(func(t *testing.T, s string) {
		m, err := scalar.UnmarshalMoney(s)
		want, wantOK := new(big.Rat), false
		if moneyText.MatchString(s) {
			want.SetString(s)
			want.Mul(want, big.NewRat(100, 1))
			wantOK = want.Cmp(maxMoney) <= 0
		}
		if (err == nil) != wantOK {
			t.Fatalf("UnmarshalMoney(%q) = %v, %v; want accepted: %v", s, m, err, wantOK)
		}
		if err != nil {
			if !errors.Is(err, domain.ErrBadMoney) || m != 0 {
				t.Fatalf("UnmarshalMoney(%q) = %d, %v; want 0 and an error matching domain.ErrBadMoney", s, m, err)
			}
			return
		}
		if !want.IsInt() || want.Num().Int64() != int64(m) {
			t.Fatalf("UnmarshalMoney(%q) = %d cents, want %s", s, m, want.RatString())
		}
		var out bytes.Buffer
		scalar.MarshalMoney(m).MarshalGQL(&out)
		text, err := strconv.Unquote(out.String())
		if err != nil {
			t.Fatalf("MarshalMoney(%d) wrote %s, not a JSON string", m, out.String())
		}
		if back, err := scalar.UnmarshalMoney(text); err != nil || back != m {
			t.Fatalf("MarshalMoney(%d) wrote %s, which reads back as %d, %v", m, out.String(), back, err)
		}
		if _, err := scalar.UnmarshalMoney(json.Number(s)); !errors.Is(err, domain.ErrBadMoney) {
			t.Fatalf("the number %s was not refused as money: %v", s, err)
		}
	})
}
