package benchcmd

import (
	"os"
	"testing"
	"time"
)

// The command name in /proc/<pid>/stat is in parentheses and may hold spaces and parentheses of
// its own; utime and stime (fields 14 and 15) are counted after the last ')'.
func TestParseProcStat(t *testing.T) {
	line := "12345 (strata) serve) x) S 1 12345 12345 0 -1 4194560 9132 0 12 0 1234 567 0 0 20 0 9 0 4869 1533034496 8771 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	comm, cpu, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if comm != "strata) serve) x" {
		t.Errorf("comm = %q, want %q", comm, "strata) serve) x")
	}
	if want := (1234 + 567) * 10 * time.Millisecond; cpu != want { // 100 ticks a second
		t.Errorf("cpu = %v, want %v", cpu, want)
	}
	for _, bad := range []string{"", "12345 strata S 1", "12345 (strata) S 1 2 3", "12345 (strata) S 1 12345 12345 0 -1 4194560 9132 0 12 0 x 567"} {
		if _, _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) gave no error", bad)
		}
	}
}

// This process's own line parses: it is a Go test binary, and has spent some CPU time by now.
func TestProcessCPUOfThisProcess(t *testing.T) {
	comm, cpu, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if comm == "" || cpu < 0 {
		t.Errorf("comm %q, cpu %v: want a name and a CPU time", comm, cpu)
	}
}
