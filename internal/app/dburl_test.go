package app

import (
	"strings"
	"testing"
)

func TestDescribeDBHidesSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://ann:s3cret@db.example:5433/app?sslmode=disable", "postgres://ann@db.example:5433/app"},
		{"postgres://ann@db.example/app?password=s3cret&sslmode=disable", "postgres://ann@db.example:5432/app"},
		{"host=db.example port=5434 user=ann password=s3cret dbname=app sslmode=disable", "postgres://ann@db.example:5434/app"},
		{"postgres://%zz", "(unparsable database url)"},
	} {
		got := describeDB(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("describeDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
