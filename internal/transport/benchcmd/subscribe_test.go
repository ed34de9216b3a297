package benchcmd

import (
	"strings"
	"testing"
)

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	now, peak, err := parseProcStatus(strings.NewReader("Name:\tstrata\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"))
	if err != nil || now != 100 || peak != 200 {
		t.Errorf("parseProcStatus = %v, %v, %v; want 100, 200, nil", now, peak, err)
	}
	if _, _, err := parseProcStatus(strings.NewReader("Name:\tstrata\n")); err == nil {
		t.Error("parseProcStatus without VmRSS succeeded")
	}
}

func TestDatabaseURLFor(t *testing.T) {
	t.Parallel()
	got, err := databaseURLFor("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "strata_bench")
	if want := "postgres://postgres@127.0.0.1:5432/strata_bench?sslmode=disable"; err != nil || got != want {
		t.Errorf("databaseURLFor = %q, %v; want %q", got, err, want)
	}
	if _, err := databaseURLFor("host=127.0.0.1 dbname=x", "y"); err == nil {
		t.Error("databaseURLFor accepted a key=value DSN")
	}
}
