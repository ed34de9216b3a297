package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strata-es/strata/internal/domain"
)

func TestParseMoneyAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want domain.Money
	}{
		{"19.98", 1998},
		{"5", 500},
		{"0.5", 50},
		{"0.05", 5},
		{"0", 0},
		{"0.00", 0},
		{"123.4", 12340},
		{"9999999999999.99", domain.MaxMoney - 1},
		{"10000000000000.00", domain.MaxMoney},
		{"10000000000000", domain.MaxMoney},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.ParseMoney(tc.in)
			if err != nil {
				t.Fatalf("ParseMoney(%q): %v, want %d", tc.in, err, tc.want)
			}
			if got != tc.want {
				t.Errorf("ParseMoney(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseMoneyRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "-1", "+1", "1.234", "1.", ".5", ".", "1e3", " 1", "1 ", "1,00", "abc", "1.a", "0x10",
		"1.2.3", "١", // an Arabic-Indic digit is not an ASCII digit
		"10000000000000.01", "99999999999999", "100000000000000", "99999999999999999999999",
	} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			t.Parallel()
			got, err := domain.ParseMoney(in)
			if err == nil {
				t.Fatalf("ParseMoney(%q) = %d, want an error", in, got)
			}
			if !errors.Is(err, domain.ErrBadMoney) {
				t.Errorf("ParseMoney(%q): error %v does not match ErrBadMoney", in, err)
			}
			if got != 0 {
				t.Errorf("ParseMoney(%q) returned %d with its error, want 0", in, got)
			}
		})
	}
}

func TestMoneyString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		m    domain.Money
		want string
	}{
		{1998, "19.98"},
		{5, "0.05"},
		{50, "0.50"},
		{0, "0.00"},
		{100, "1.00"},
		{-150, "-1.50"},
		{-5, "-0.05"},
		{domain.MaxMoney, "10000000000000.00"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("Money(%d).String() = %q, want %q", int64(tc.m), got, tc.want)
		}
	}
}

// Every non-negative amount up to MaxMoney that String prints, ParseMoney reads back.
func TestMoneyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []domain.Money{0, 1, 5, 10, 99, 100, 1998, 123456789, domain.MaxMoney - 1, domain.MaxMoney} {
		s := m.String()
		got, err := domain.ParseMoney(s)
		if err != nil {
			t.Errorf("ParseMoney(Money(%d).String() = %q): %v", int64(m), s, err)
			continue
		}
		if got != m {
			t.Errorf("ParseMoney(%q) = %d, want %d", s, got, m)
		}
	}
}

func TestInvariantError(t *testing.T) {
	t.Parallel()
	err := domain.Broken("some-rule", "value %d is %s", 7, "bad")
	if !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("errors.Is(%v, ErrInvariant) = false, want true", err)
	}
	if errors.Is(err, domain.ErrNotFound) {
		t.Errorf("errors.Is(%v, ErrNotFound) = true, want false", err)
	}
	wrapped := fmt.Errorf("command: %w", err)
	if !errors.Is(wrapped, domain.ErrInvariant) {
		t.Errorf("errors.Is(wrapped %v, ErrInvariant) = false, want true", wrapped)
	}
	var ie *domain.InvariantError
	if !errors.As(wrapped, &ie) {
		t.Fatalf("errors.As(%v, *InvariantError) = false", wrapped)
	}
	if ie.Rule != "some-rule" {
		t.Errorf("Rule = %q, want %q", ie.Rule, "some-rule")
	}
	if ie.Reason != "value 7 is bad" || ie.Error() != "value 7 is bad" {
		t.Errorf("Reason = %q, Error() = %q, want both %q", ie.Reason, ie.Error(), "value 7 is bad")
	}
	if errors.Is(errors.New("other"), domain.ErrInvariant) {
		t.Error("a plain error matches ErrInvariant")
	}
}
