package eventstore

import (
	"math"
	"testing"
)

// Before is the last position before p: reading after it starts at p, and nothing lies between.
func TestPositionBefore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ p, want Position }{
		{Position{tx: 7, seq: 42}, Position{tx: 7, seq: 41}},
		{Position{tx: 7, seq: 1}, Position{tx: 7, seq: 0}},
		{Position{tx: 7, seq: 0}, Position{tx: 6, seq: math.MaxInt64}}, // AsOf's end past every visible event
		{Position{}, Position{}},
	} {
		got := tc.p.Before()
		if got != tc.want {
			t.Errorf("%+v.Before() = %+v, want %+v", tc.p, got, tc.want)
		}
		if !tc.p.IsZero() && got.Compare(tc.p) >= 0 {
			t.Errorf("%+v.Before() = %+v is not before it", tc.p, got)
		}
	}
}
