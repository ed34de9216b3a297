package partition

import (
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// TestDetachTimeoutIsTheLockTimeout: the errors name detachTimeout as the wait of DETACH
// PARTITION, which pgsql.PartitionDetachLockTimeout sets; the two must be the same time.
func TestDetachTimeoutIsTheLockTimeout(t *testing.T) {
	if want := "lock_timeout = '" + detachTimeout + "'"; !strings.Contains(pgsql.PartitionDetachLockTimeout, want) {
		t.Errorf("pgsql.PartitionDetachLockTimeout = %q, want it to set %s", pgsql.PartitionDetachLockTimeout, want)
	}
}
