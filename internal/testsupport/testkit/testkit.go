// Package testkit holds what the tests of several packages that run Strata's commands share:
// a leak check, a buffer safe for concurrent writers, an environment of the test's own, and a
// build of the strata binary. Only tests import it.
package testkit

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// VerifyNoLeaks fails t if goroutines started after this call outlive t and its subtests.
// Top-level parallel tests run only once every sequential one has finished, so a sequential
// test that calls this sees no goroutine but its own.
func VerifyNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// SyncBuffer is a bytes.Buffer that a command's goroutines may write while the test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// EnvOf returns a getenv that sees only vars: the test's own environment never leaks in.
func EnvOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// BuildStrata builds the strata binary into the test's temporary directory.
func BuildStrata(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strata")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build strata: %v", err)
	}
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/strata-es/strata/cmd/strata")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
