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

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// chromiumPath is where Debian's chromium package puts the browser the Playground test drives.
const chromiumPath = "/usr/bin/chromium"

// The Playground is opened in a real headless Chromium, runs a query against the server's
// own routes and shows the answer, then runs a subscription over a WebSocket to the same
// /query and shows an event appended while it runs; every request the page makes (the
// WebSocket too) goes to that server, so the page works on a machine without internet, and
// its Content-Security-Policy lets it open that WebSocket.
//
// Sequential, so that its leak check sees only what the browser and the server start.
func TestPlaygroundRunsAQueryAndASubscriptionAndTalksOnlyToItsServer(t *testing.T) {
	verifyNoLeaks(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the Playground test drives headless Chromium at %s: %v; install Debian's chromium package (apt-get install -y chromium; .ci/run does)", chromiumPath, err)
	}

	// Sized as serve's pool is by default (--db-max-conns 20), not pgxpool's max(4, CPUs): a
	// projector's step holds one connection and takes a second, so four projectors on a pool of
	// four wait for each other, and every request with them.
	pool := dbtest.PoolFor(t, dbtest.URL(t), 20)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The server's own parts, subscription feed and projectors included: the Appended hook
	// of their store wakes the feed at once.
	parts := newResolver(pool, nil, config.Config{MaxPageSize: 100, ConsistencyTimeout: 5 * time.Second, SubscriberBuffer: 256}, logger)
	store := parts.resolver.Store
	runCtx, stopRunning := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { _ = parts.hub.Run(runCtx) })
	running.Go(func() { _ = parts.projectors.Run(runCtx) })
	if _, err := store.Append(t.Context(), "playground-1", eventstore.NoStream(),
		[]eventstore.EventData{{Type: "Pinged", Data: json.RawMessage(`{"n": 1}`)}}); err != nil {
		t.Fatal(err)
	}
	// The global order shows an event once every older transaction in the cluster has ended,
	// and tests share the cluster: wait for it rather than assume it.
	waitVisibleInAll(t, store)

	srv := httptest.NewServer(routes(&database{pool: pool}, parts.resolver, config.Config{}, logger))
	// After the browser is gone (deferred below, so run first): stopping the hub ends the
	// subscriptions, and so the WebSocket connections, which srv.Close leaves alone (they are
	// hijacked); then the server closes.
	defer func() {
		stopRunning()
		running.Wait()
		srv.Close()
	}()
	defer stopRunning() // also when a step below fails before the browser starts

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := newChromium(ctx, t)
	defer cancelAlloc() // waits for the browser process to exit

	var (
		mu       sync.Mutex
		requests []string
		sockets  []string // WebSocket URLs, which are no requests to the network domain
		problems []string // thrown exceptions, console errors, failed loads, policy violations
	)
	// The listener is in place before the tab's first command, so it sees every request.
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		mu.Lock() // runs in the tab's message loop: record and return
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *network.EventWebSocketCreated:
			sockets = append(sockets, ev.URL)
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
		mu.Lock()
		reported := strings.Join(problems, "\n")
		mu.Unlock()
		t.Fatalf("in the Playground, %s: %v\nthe page reported:\n%.2000s\npage text:\n%.2000s", step, err, reported, body)
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
	if want := []string{"RegisterUser", "CreateOrder", "PayOrder", "OrderHistory", "AllEvents", "LiveEvents"}; !slices.Equal(tabs, want) {
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
	// resultShowing waits for the result pane to show want, and returns its text.
	resultShowing := func(step, want string) string {
		t.Helper()
		text, err := chromedp.Run(browserCtx, chromedp.Poll[string](`(() => {
			const r = document.querySelector('.graphiql-response .CodeMirror');
			const text = r ? r.CodeMirror.getValue() : '';
			return text.includes(`+jsString(want)+`) ? text : false;
		})()`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			fail(step, err)
		}
		return text
	}
	result := resultShowing("wait for the result", "playground-1")

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
	if example := resultShowing("wait for the AllEvents result", "playground-1"); !strings.Contains(example, `"endCursor"`) {
		t.Errorf("the AllEvents example answered %s, want a page with pageInfo.endCursor", example)
	}

	// A subscription: GraphiQL runs it over a WebSocket to /query. The hub delivers only
	// events appended after it registered the subscriber (no after:), so append once it has.
	const subscription = `subscription Live { events(category: "live") { streamId type } }`
	if _, err := chromedp.Run(browserCtx, chromedp.Evaluate[any](editor+`.setValue(`+jsString(subscription)+`)`)); err != nil {
		fail("set the subscription", err)
	}
	if _, err := chromedp.Run(browserCtx, chromedp.Poll[bool](
		editor+`.operationName === 'Live'`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		fail("wait for GraphiQL to take the subscription in", err)
	}
	if err := chromedp.Do(browserCtx, chromedp.Click(chromedp.CSS(`.graphiql-execute-button`))); err != nil {
		fail("click run on the subscription", err)
	}
	for deadline := time.Now().Add(30 * time.Second); parts.hub.Stats().Subscribers == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("wait for the subscription to reach the server", fmt.Errorf("the hub has no subscriber after 30s"))
		}
	}
	if _, err := store.Append(t.Context(), "live-1", eventstore.NoStream(),
		[]eventstore.EventData{{Type: "WentLive", Data: json.RawMessage(`{"n": 1}`)}}); err != nil {
		t.Fatal(err)
	}
	live := resultShowing("wait for the subscription's event", "live-1")
	var event struct {
		Data struct {
			Events struct{ StreamID, Type string }
		}
	}
	if err := json.Unmarshal([]byte(live), &event); err != nil {
		t.Fatalf("the result pane does not hold JSON: %v\n%s", err, live)
	}
	if got := event.Data.Events; got.StreamID != "live-1" || got.Type != "WentLive" {
		t.Errorf("the subscription shows %s, want the event WentLive of live-1", live)
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
	for _, s := range sockets {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			t.Errorf("the page opened a WebSocket to %q, which does not parse: %v", s, err)
		case u.Scheme != "ws" || u.Host != server.Host || u.Path != "/query":
			t.Errorf("the page opened a WebSocket to %s, want ws://%s/query", s, server.Host)
		}
	}
	if len(sockets) == 0 {
		t.Errorf("the page opened no WebSocket, yet showed the subscription's event")
	}
	t.Logf("the page made %d requests: %s; and opened WebSockets: %s", len(requests), strings.Join(seen, " "), strings.Join(sockets, " "))
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

// newChromium starts headless Chromium, as root and without a GPU, with the flags that keep it
// from reaching for outside hosts on its own. Its cancel waits for the browser process to exit.
func newChromium(ctx context.Context, t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
}
