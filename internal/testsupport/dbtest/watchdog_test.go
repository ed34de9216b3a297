package dbtest

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReportNamesTheTestsAndWhereTheyWait(t *testing.T) {
	block, parked := make(chan struct{}), make(chan struct{})
	go func() {
		close(parked)
		<-block // where the report must show this goroutine waiting
	}()
	<-parked
	defer close(block)
	// The goroutine may not be at its receive yet: take stacks until it is.
	var stacks []byte
	for range 1000 {
		stacks = allStacks()
		if bytes.Contains(stacks, []byte("TestReportNamesTheTestsAndWhereTheyWait.func1")) && bytes.Contains(stacks, []byte("chan receive")) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	stacks = append(stacks, []byte("\n\ngoroutine 99 [select]:\nexample.com/server.(*Hub).feed(...)\n\t/src/hub.go:10 +0x1")...)

	var out bytes.Buffer
	report(&out, 29*time.Minute, stacks)
	got := out.String()
	if !strings.Contains(got, "watchdog_test.go:") || !strings.Contains(got, "chan receive") {
		t.Errorf("the report does not show the waiting test goroutine:\n%s", got)
	}
	if strings.Contains(got, "hub.go") {
		t.Errorf("the report shows a goroutine that runs no test code:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	want := "dbtest: stopped after 29m0s; tests still running: [TestReportNamesTheTestsAndWhereTheyWait]"
	if last := lines[len(lines)-1]; last != want {
		t.Errorf("last line %q, want %q", last, want)
	}
}
