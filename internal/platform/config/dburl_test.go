package config_test

import (
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/platform/config"
)

func TestDescribeDBHidesSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://ann:s3cret@db.example:5433/app?sslmode=disable", "postgres://ann@db.example:5433/app"},
		{"postgres://ann@db.example/app?password=s3cret&sslmode=disable", "postgres://ann@db.example:5432/app"},
		{"host=db.example port=5434 user=ann password=s3cret dbname=app sslmode=disable", "postgres://ann@db.example:5434/app"},
		{"postgres://%zz", "(unparsable database url)"},
	} {
		got := config.DescribeDB(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("config.DescribeDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
