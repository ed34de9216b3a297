package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/dbtest"
	"github.com/strata-es/strata/internal/eventstore"
)

// chromiumPath is where Debian's chromium package puts the browser the Playground test drives.
const chromiumPath = "/usr/bin/chromium"

// The Playground is opened in a real headless Chromium, runs a query against the server's
// own routes and shows the answer; every request the page makes goes to that server, so the
// page works on a machine without internet.
//
// Sequential, so that its leak check sees only what the browser and the server start.
func TestPlaygroundRunsAQueryAndTalksOnlyToItsServer(t *testing.T) {
	verifyNoLeaks(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the Playground test drives headless Chromium at %s: %v; install Debian's chromium package (apt-get install -y chromium; .ci/run does)", chromiumPath, err)
	}

	pool := dbtest.Pool(t)
	store := eventstore.New(pool, eventstore.Options{})
	if _, err := store.Append(t.Context(), "playground-1", eventstore.NoStream(),
		[]eventstore.EventData{{Type: "Pinged", Data: json.RawMessage(`{"n": 1}`)}}); err != nil {
		t.Fatal(err)
	}
	// The global order shows an event once every older transaction in the cluster has ended,
	// and tests share the cluster: wait for it rather than assume it.
	waitVisibleInAll(t, store)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(routes(&database{pool: pool}, &graph.Resolver{Store: store, MaxPageSize: 100}, logger))
	defer srv.Close() // after the browser is gone (deferred below, so run first)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// Without these Chromium reaches for outside hosts on its own.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc() // waits for the browser process to exit

	var (
		mu       sync.Mutex
		requests []string
		problems []string // thrown exceptions, console errors, failed loads, policy violations
	)
	// The listener is in place before the tab's first command, so it sees every request.
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		mu.Lock() // runs in the tab's message loop: record and return
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text+" "+describe(ev.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				text := string(ev.Type) + ":"
				for _, arg := range ev.Args {
					text += " " + describe(arg) + string(arg.Value)
				}
				problems = append(problems, text)
			}
		case *cdplog.EventEntryAdded:
			// The browser's own warnings change with its version; its errors (failed loads) and
			// policy violations are the page's doing.
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Source == cdplog.EntrySourceSecurity {
				problems = append(problems, fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}))
	defer cancelBrowser()

	// fail ends the test with what the page showed, which says more than a timeout does.
	fail := func(step string, err error) {
		t.Helper()
		body, _ := chromedp.Run(browserCtx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("in the Playground, %s: %v\npage text:\n%.2000s", step, err, body)
	}
	const editor = `document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror`
	if err := chromedp.Do(browserCtx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{})
			return err
		}),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-query-editor .CodeMirror`)),
	); err != nil {
		fail("open /", err)
	}

	// It opens with the examples, one tab each, the first one shown.
	tabs, err := chromedp.Run(browserCtx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('.graphiql-tab-button')].map(b => b.textContent.trim())`))
	if err != nil {
		fail("read the tabs", err)
	}
	if want := []string{"RegisterUser", "CreateOrder", "PayOrder", "OrderHistory", "AllEvents"}; !slices.Equal(tabs, want) {
		t.Errorf("the Playground opens with tabs %q, want %q", tabs, want)
	}
	firstTab, err := chromedp.Run(browserCtx, chromedp.Evaluate[string](editor+`.getValue()`))
	if err != nil {
		fail("read the query editor", err)
	}
	if !strings.Contains(firstTab, "mutation RegisterUser") {
		t.Errorf("the first tab holds %q, want the RegisterUser example", firstTab)
	}

	// Type a query of our own and run it. GraphiQL takes an edit in after a 100 ms debounce,
	// and until then would send the operation name of the text before: wait for the editor's
	// operationName, which is what GraphiQL sends, to turn to the new one.
	const query = `query Ping { allEvents(first: 1) { edges { cursor node { streamId type } } pageInfo { hasNextPage } } }`
	if _, err := chromedp.Run(browserCtx, chromedp.Evaluate[any](editor+`.setValue(`+jsString(query)+`)`)); err != nil {
		fail("set the query", err)
	}
	if _, err := chromedp.Run(browserCtx, chromedp.Poll[bool](
		editor+`.operationName === 'Ping'`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		fail("wait for GraphiQL to take the query in", err)
	}
	if err := chromedp.Do(browserCtx, chromedp.Click(chromedp.CSS(`.graphiql-execute-button`))); err != nil {
		fail("click run", err)
	}
	// resultShowing waits for the result pane to show the appended event, and returns its text.
	resultShowing := func(step string) string {
		t.Helper()
		text, err := chromedp.Run(browserCtx, chromedp.Poll[string](`(() => {
			const r = document.querySelector('.graphiql-response .CodeMirror');
			const text = r ? r.CodeMirror.getValue() : '';
			return text.includes('playground-1') ? text : false;
		})()`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			fail(step, err)
		}
		return text
	}
	result := resultShowing("wait for the result")

	var answer struct {
		Data struct {
			AllEvents struct {
				Edges []struct {
					Node struct{ StreamID, Type string }
				}
				PageInfo struct{ HasNextPage bool }
			}
		}
	}
	if err := json.Unmarshal([]byte(result), &answer); err != nil {
		t.Fatalf("the result pane does not hold JSON: %v\n%s", err, result)
	}
	if edges := answer.Data.AllEvents.Edges; len(edges) != 1 || edges[0].Node.StreamID != "playground-1" || edges[0].Node.Type != "Pinged" {
		t.Errorf("the result pane shows %s, want the one event Pinged in playground-1", result)
	}

	// The AllEvents example runs as it opens, with its variables.
	if _, err := chromedp.Run(browserCtx, chromedp.Evaluate[any](
		`[...document.querySelectorAll('.graphiql-tab-button')].find(b => b.textContent.trim() === 'AllEvents').click()`)); err != nil {
		fail("open the AllEvents tab", err)
	}
	if _, err := chromedp.Run(browserCtx, chromedp.Poll[bool](
		editor+`.operationName === 'AllEvents' && `+
			`document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')?.CodeMirror.getValue().includes('"after"')`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		fail("wait for the AllEvents tab and its variables", err)
	}
	if err := chromedp.Do(browserCtx, chromedp.Click(chromedp.CSS(`.graphiql-execute-button`))); err != nil {
		fail("click run on AllEvents", err)
	}
	if example := resultShowing("wait for the AllEvents result"); !strings.Contains(example, `"endCursor"`) {
		t.Errorf("the AllEvents example answered %s, want a page with pageInfo.endCursor", example)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		for _, p := range problems {
			t.Errorf("the page reported: %.300s", p)
		}
	}
	server, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	queried := false
	var seen []string
	for _, r := range requests {
		seen = append(seen, fmt.Sprintf("%.60s", r))
		u, err := url.Parse(r)
		if err != nil {
			t.Errorf("the page requested %q, which does not parse: %v", r, err)
			continue
		}
		switch {
		case u.Scheme == "data" || u.Scheme == "blob": // made in the page, fetch nothing
		case u.Host != server.Host:
			t.Errorf("the page requested %s, which is not the server it came from (%s)", r, server.Host)
		case u.Path == "/query":
			queried = true
		}
	}
	if !queried {
		t.Errorf("the page never requested /query; its requests: %v", requests)
	}
	t.Logf("the page made %d requests: %s", len(requests), strings.Join(seen, " "))
}

// waitVisibleInAll waits until the store's global order shows at least one event.
func waitVisibleInAll(t *testing.T, store *eventstore.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, err := store.ReadAll(t.Context(), eventstore.ReadAllOptions{Max: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the appended event is not in the global order after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// describe gives the text of a thrown value, when it has one.
func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}
