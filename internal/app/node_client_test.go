package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// installNodePackages runs npm ci in dir when pkg is not installed there (a fresh clone, where make test runs the tests as they are), and
// fails t when it cannot.
func installNodePackages(t *testing.T, dir, pkg string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("installing %s in %s needs npm: %v; install Node.js and npm (.ci/run does)", pkg, dir, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}

// nodeClientDir is web/node-client, where the Node test client, its pinned npm packages and
// their node_modules live.
const nodeClientDir = "../../web/node-client"

// nodeClient returns node's path and the test client script's, failing t (never skipping) when
// node or the npm packages are missing: make test installs them (`make node-client`).
func nodeClient(t *testing.T) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the graphql-ws client test runs Node.js: %v; install Node.js 18 or later and npm (.ci/run does) ", err)
	}
	for _, pkg := range []string{"graphql", "graphql-ws", "ws"} {
		installNodePackages(t, nodeClientDir, pkg)
	}
	script, err = filepath.Abs(filepath.Join(nodeClientDir, "graphql-ws-client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return node, script
}

type nodeEvent struct {
	StreamID string `json:"streamId"`
	Version  int    `json:"version"`
	Type     string `json:"type"`
	Position string `json:"position"`
}

// The npm graphql-ws client (the library GraphiQL and most JavaScript apps use, speaking
// graphql-transport-ws; here its 5.x line, which runs on Node.js 18 and later), run by Node
// against the real `strata serve`, receives every event of its subscription exactly once and in
// order: the ones appended before it subscribed through catch-up from after:, the ones appended
// while it runs live.
func TestNodeGraphQLWSClientReceivesEvents(t *testing.T) {
	node, script := nodeClient(t)
	nodeVersion, err := exec.CommandContext(t.Context(), node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	t.Logf("Node.js %s at %s", strings.TrimSpace(string(nodeVersion)), node)
	srv := startServeOn(t, dbtest.URL(t))

	const appendM = `mutation($s: String!, $t: String!, $v: Int!) {
		appendEvents(streamId: $s, events: [{type: $t, data: {}}], expectedVersion: $v) { position }
	}`
	version := 0
	appendOne := func(typ string) string {
		t.Helper()
		var out struct{ Position string }
		ok(t, gql(t, srv.addr, appendM, map[string]any{"s": "nodetest-1", "t": typ, "v": version}), "appendEvents", &out)
		version++
		return out.Position
	}
	// The marker's position is where the subscription starts: everything after it, and nothing
	// before, whenever Node gets to subscribing.
	after := appendOne("Marker")
	const before, live = 2, 3
	for i := range before {
		appendOne(fmt.Sprintf("Before%d", i+1))
	}

	client := startNode(t, 60*time.Second, nil, node, script, "ws://"+srv.addr+"/query", strconv.Itoa(before+live), after)
	var got []nodeEvent
	read := func(line string) {
		t.Helper()
		var e nodeEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("the client printed %q, not an event: %v", line, err)
			return
		}
		got = append(got, e)
	}

	// Once the first event is in, the subscription is running: append the rest one by one.
	first, more := <-client.lines
	if !more {
		_ = client.wait()
		t.Fatalf("the client ended before any event (%v); stderr:\n%s", context.Cause(client.ctx), client.stderr.String())
	}
	read(first)
	for i := range live {
		appendOne(fmt.Sprintf("Live%d", i+1))
	}
	for line := range client.lines {
		read(line)
	}
	if err := client.wait(); err != nil {
		t.Fatalf("the client failed: %v (context: %v); stderr:\n%s", err, context.Cause(client.ctx), client.stderr.String())
	}

	var want []string
	for i := range before {
		want = append(want, fmt.Sprintf("%d Before%d", i+2, i+1))
	}
	for i := range live {
		want = append(want, fmt.Sprintf("%d Live%d", before+i+2, i+1))
	}
	var have []string
	for i, e := range got {
		have = append(have, fmt.Sprintf("%d %s", e.Version, e.Type))
		if e.StreamID != "nodetest-1" {
			t.Errorf("event %d is of stream %q, want nodetest-1", i, e.StreamID)
		}
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("event %d's position %s does not follow %s", i, e.Position, got[i-1].Position)
		}
	}
	if strings.Join(have, ", ") != strings.Join(want, ", ") {
		t.Errorf("the client received [%s], want each event after the marker once, in order: [%s]\nstderr:\n%s",
			strings.Join(have, ", "), strings.Join(want, ", "), client.stderr.String())
	}
}

// nodeProcess is a Node script that startNode runs: its standard output a line at a time (lines
// is closed when it ends), its standard error, and its context.
type nodeProcess struct {
	cmd    *exec.Cmd
	ctx    context.Context
	lines  <-chan string
	stderr *syncBuffer
	waited bool
}

// startNode runs node with script and args in the script's folder, with env added to the
// environment, for at most timeout. Should the test end before wait, Node is killed and its
// output drained, so that nothing is left behind.
func startNode(t *testing.T, timeout time.Duration, env []string, node, script string, args ...string) *nodeProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	p := &nodeProcess{cmd: cmd, ctx: ctx, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	p.lines = lines
	t.Cleanup(func() {
		if !p.waited {
			cancel()
			for range lines {
			}
			_ = cmd.Wait()
		}
		cancel()
	})
	return p
}

// wait waits for Node to end.
func (p *nodeProcess) wait() error {
	p.waited = true
	return p.cmd.Wait()
}
