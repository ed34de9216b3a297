package dbtest

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"time"
)

// watchdogLead is how long before go test's own -timeout the watchdog stops a hung binary.
const watchdogLead = time.Minute

// testFunc finds the test functions in a goroutine's stack: "pkg.TestName(" or
// "pkg.TestName.func1(".
var testFunc = regexp.MustCompile(`\.(Test[A-Za-z0-9_]+)[.(]`)

// startWatchdog stops the test binary a minute before go test's -timeout would, when that is
// more than two minutes away. go test's own timeout prints every goroutine, test goroutines first,
// and a log cut to its tail then shows only the server's goroutines; the watchdog prints the
// goroutines that run test code and, last, the names of the tests still running. The returned
// func stops it.
func startWatchdog(out io.Writer) (stop func() bool) {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.timeout")
	if f == nil {
		return func() bool { return false }
	}
	timeout, ok := f.Value.(flag.Getter).Get().(time.Duration)
	if !ok || timeout <= 2*watchdogLead {
		return func() bool { return false }
	}
	started := time.Now()
	t := time.AfterFunc(timeout-watchdogLead, func() {
		report(out, time.Since(started).Round(time.Second), allStacks())
		os.Exit(2)
	})
	return t.Stop
}

// allStacks is every goroutine's stack.
func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// report writes the goroutines of stacks that run code of a _test.go file, then the tests
// they belong to.
func report(out io.Writer, ran time.Duration, stacks []byte) {
	var tests []string
	fmt.Fprintf(out, "\ndbtest: the tests ran for %s, a minute short of -timeout; the goroutines running test code:\n\n", ran)
	for _, g := range bytes.Split(stacks, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("_test.go:")) {
			continue
		}
		fmt.Fprintf(out, "%s\n\n", g)
		for _, m := range testFunc.FindAllSubmatch(g, -1) {
			if name := string(m[1]); name != "TestMain" && !slices.Contains(tests, name) {
				tests = append(tests, name)
			}
		}
	}
	slices.Sort(tests)
	fmt.Fprintf(out, "dbtest: stopped after %s; tests still running: %v\n", ran, tests)
}
