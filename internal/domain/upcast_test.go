package domain_test

import (
	"errors"
	"testing"

	"github.com/strata-es/strata/internal/domain"
)

func TestMoneyFromJSONNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]domain.Money{
		"9.99": 999, "10": 1000, "0.5": 50, "0.125": 13, "0.124": 12, "1.005": 101, "-2.5": -250, "0": 0,
		"29.97": 2997, // 29.97 as a float64 is 29.969999...; read as text it is exact
	} {
		got, err := domain.MoneyFromJSONNumber(in)
		if err != nil || got != want {
			t.Errorf("MoneyFromJSONNumber(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1e3", "abc", "1.2.3", "--1", "100000000000000"} {
		if _, err := domain.MoneyFromJSONNumber(in); !errors.Is(err, domain.ErrBadMoney) {
			t.Errorf("MoneyFromJSONNumber(%q): %v, want ErrBadMoney", in, err)
		}
	}
}
