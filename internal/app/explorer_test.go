package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/transport/explorer"
)

// screenshotDir is where the Explorer test writes a PNG of each view for a person to look at:
// $STRATA_SCREENSHOTS, else artifacts/screenshots/explorer at the repository's root (ignored by
// git; .ci/run prints the folder).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STRATA_SCREENSHOTS")
	if dir == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			t.Fatalf("the repository's root is not two levels up from %s: %v", must(os.Getwd()), err)
		}
		dir = filepath.Join(root, "artifacts", "screenshots", "explorer")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("make the screenshot folder: %v", err)
	}
	return dir
}

func must[T any](v T, _ error) T { return v }

// The Explorer in a real headless Chromium, against the server's own routes: it finds an
// order stream by searching, opens its timeline and the order through its versions, moves the
// version slider from 1 (PENDING) to the last (SHIPPED) and shows the state change and what
// the event changed; the link to the Playground opens that very query there; a product, which
// the Explorer knows only from the API's list of registered aggregates, is picked from that
// list and moved through its versions (stock 3, then 5 after a restock), and the streams list
// links its stream to it; the live tail
// shows an event appended through the API, and after a pause resumes from its last position,
// showing what was appended meanwhile once; statistics show the projections. Every request
// the page makes goes to its server. A screenshot of each view is written (screenshotDir).
//
// Sequential, so that its leak check sees only what the browser and the server start.
func TestExplorerFindsAnOrderMovesThroughItsVersionsAndTailsLiveEvents(t *testing.T) {
	verifyNoLeaks(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the Explorer test drives headless Chromium at %s: %v; install Debian's chromium package (apt-get install -y chromium; .ci/run does)", chromiumPath, err)
	}
	shots := screenshotDir(t)

	// Sized as serve's pool is by default (--db-max-conns 20), not pgxpool's max(4, CPUs): a
	// projector's step holds one connection and takes a second, so four projectors on a pool of
	// four wait for each other, and every request with them.
	pool := dbtest.PoolFor(t, dbtest.URL(t), 20)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	parts := newResolver(pool, nil, config.Config{MaxPageSize: 100, ConsistencyTimeout: 5 * time.Second, SubscriberBuffer: 256}, logger)
	runCtx, stopRunning := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { _ = parts.hub.Run(runCtx) })
	running.Go(func() { _ = parts.projectors.Run(runCtx) })
	srv := httptest.NewServer(routes(&database{pool: pool}, parts.resolver, config.Config{}, logger))
	// After the browser is gone (deferred below, so run first): stopping the hub ends the
	// subscriptions, and so their WebSocket connections; then the server closes.
	defer func() {
		stopRunning()
		running.Wait()
		srv.Close()
	}()
	defer stopRunning() // also when a step below fails before the browser starts
	addr := strings.TrimPrefix(srv.URL, "http://")

	// An order that went PENDING → PAID → SHIPPED, through the API.
	var ada userOut
	ok(t, gql(t, addr, registerM, map[string]any{"n": "Ada Lovelace", "e": "ada@example.com"}), "registerUser", &ada)
	var o orderOut
	ok(t, gql(t, addr, createM, map[string]any{"c": ada.User.ID, "items": items("BOOK", 2, "9.99")}), "createOrder", &o)
	ok(t, gql(t, addr, payM, map[string]any{"id": o.Order.ID, "a": o.Order.Total}), "payOrder", &o)
	ok(t, gql(t, addr, shipM, map[string]any{"id": o.Order.ID}), "shipOrder", &o)
	if o.Order.Status != "SHIPPED" || o.Order.Version != 3 {
		t.Fatalf("the order is %+v, want SHIPPED at version 3", o.Order)
	}
	streamID := "order-" + o.Order.ID

	b := openBrowser(t)
	defer b.close()
	do, until, text, fail := b.do, b.until, b.text, b.fail
	browserCtx := b.ctx
	screenshot := func(name string) { b.screenshot(filepath.Join(shots, name)) }

	// Streams: search by prefix, find the order's stream.
	do("open /explorer",
		chromedp.Navigate(srv.URL+explorer.Path),
		chromedp.WaitVisible(chromedp.CSS(`#stream-prefix`)),
	)
	do("search for the order's stream",
		chromedp.SendKeys(chromedp.CSS(`#stream-prefix`), streamID[:len("order-")+8]),
		chromedp.Click(chromedp.CSS(`#stream-search`)),
	)
	link := `[...document.querySelectorAll('#stream-results a.stream-link')].find(a => a.textContent === ` + jsString(streamID) + `)`
	until("find the order's stream in the results", `!!`+link)
	screenshot("1-streams.png")

	// Its timeline: three events, oldest first.
	do("open the stream", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](link+`.click()`)(ctx, t)
		return err
	}))
	until("see the stream's timeline", `document.querySelectorAll('#timeline li').length === 3`)
	if got := text("read the timeline", `#timeline`); !strings.Contains(got, "OrderCreated") || !strings.Contains(got, "OrderShipped") {
		t.Errorf("the timeline shows %q, want OrderCreated … OrderShipped", got)
	}
	screenshot("2-stream.png")

	// The order through its versions: the slider, from the keyboard.
	do("open the order", chromedp.Click(chromedp.CSS(`#open-aggregate`)))
	until("see the order at its last version", `document.querySelector('#agg-state td[data-field=status]')?.textContent === 'SHIPPED'`)
	do("move the slider to version 1", chromedp.Focus(chromedp.CSS(`#version-slider`)), chromedp.KeyEvent(kb.Home))
	until("see the order at version 1", `document.querySelector('#version-label')?.textContent === 'version 1 of 3' && `+
		`document.querySelector('#agg-state td[data-field=status]')?.textContent === 'PENDING' && `+
		`document.querySelector('#agg-event-type')?.textContent === 'OrderCreated'`)
	screenshot("3-aggregate-version-1.png")
	do("move the slider to the last version", chromedp.Focus(chromedp.CSS(`#version-slider`)), chromedp.KeyEvent(kb.End))
	until("see the order at version 3", `document.querySelector('#version-label')?.textContent === 'version 3 of 3' && `+
		`document.querySelector('#agg-state td[data-field=status]')?.textContent === 'SHIPPED' && `+
		`document.querySelector('#agg-event-type')?.textContent === 'OrderShipped'`)
	if got := text("read what the event changed", `#agg-changes`); !strings.Contains(got, "PAID") || !strings.Contains(got, "SHIPPED") || !strings.Contains(got, "DHL") {
		t.Errorf("what the last event changed reads %q, want status PAID → SHIPPED and the carrier DHL", got)
	}
	screenshot("4-aggregate-version-3.png")

	// The Playground link carries the view's query, and the Playground opens it.
	href, err := chromedp.Run(browserCtx, chromedp.Evaluate[string](`document.querySelector('#open-playground').href`))
	if err != nil {
		fail("read the Playground link", err)
	}
	u, err := url.Parse(href)
	if err != nil || u.Path != "/" || !strings.Contains(u.Query().Get("query"), "ExplorerOrderAtVersion") || !strings.Contains(u.Query().Get("variables"), `"version": 3`) {
		t.Errorf("the Playground link is %q (%v), want / with the view's query and version 3", href, err)
	}
	do("open the Playground link", chromedp.Navigate(href), chromedp.WaitVisible(chromedp.CSS(`.graphiql-query-editor .CodeMirror`)))
	const editor = `document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror`
	until("see the view's query in the Playground", editor+`.getValue().includes('ExplorerOrderAtVersion')`)
	if err := chromedp.Do(browserCtx, chromedp.Click(chromedp.CSS(`.graphiql-execute-button`))); err != nil {
		fail("run the linked query", err)
	}
	until("see the linked query's answer", `(document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '').includes('"SHIPPED"')`)

	// A product: the Explorer has no code of its own for it. Created with stock 3, restocked by 2.
	var created struct{ Product struct{ ID string } }
	ok(t, gql(t, addr, `mutation { createProduct(sku: "LAMP-1", name: "Desk lamp", price: "9.99", stock: 3) { product { id } } }`, nil), "createProduct", &created)
	productID := created.Product.ID
	var restocked struct {
		Product  struct{ Stock, Version int }
		Position string
	}
	ok(t, gql(t, addr, `mutation($id: ID!) { restockProduct(id: $id, quantity: 2) { product { stock version } position } }`, map[string]any{"id": productID}), "restockProduct", &restocked)
	if restocked.Product.Stock != 5 || restocked.Product.Version != 2 {
		t.Fatalf("the product is %+v, want stock 5 at version 2", restocked.Product)
	}
	const kindOptions = `[...document.querySelectorAll('#agg-kind option')].map(o => o.value)`
	do("open the aggregate view", chromedp.Navigate(srv.URL+explorer.Path+"#/aggregate"))
	until("see the kinds the API lists", kindOptions+`.includes('product')`)
	kinds, err := chromedp.Run(browserCtx, chromedp.Evaluate[[]string](kindOptions))
	if err != nil {
		fail("read the kinds", err)
	}
	if got, want := strings.Join(kinds, " "), "user order product"; got != want {
		t.Errorf("the aggregate view offers %q, want the registered aggregates %q", got, want)
	}
	do("pick product and give the product's id",
		chromedp.SetValue(chromedp.CSS(`#agg-kind`), "product"),
		chromedp.SendKeys(chromedp.CSS(`#agg-id`), productID),
		chromedp.Click(chromedp.CSS(`#agg-kind ~ button[type=submit]`)))
	until("see the product at its last version", `document.querySelector('#version-label')?.textContent === 'version 2 of 2' && `+
		`document.querySelector('#agg-state td[data-field=stock]')?.textContent === '5' && `+
		`document.querySelector('#agg-event-type')?.textContent === 'ProductRestocked'`)
	const changeRows = `[...document.querySelectorAll('#agg-changes tbody tr')].map(tr => [...tr.children].map(c => c.textContent).join(' '))`
	changes, err := chromedp.Run(browserCtx, chromedp.Evaluate[[]string](changeRows))
	if err != nil {
		fail("read what the restock changed", err)
	}
	if got, want := strings.Join(changes, "; "), "stock 3 5"; got != want {
		t.Errorf("what the restock changed reads %q, want %q: only stock, 3 → 5", got, want)
	}
	if got := text("read the product's state", `#agg-state table.state`); !strings.Contains(got, "LAMP-1") || !strings.Contains(got, "Desk lamp") || !strings.Contains(got, "9.99") {
		t.Errorf("the product's state reads %q, want its SKU, name and price", got)
	}
	do("move the slider to version 1", chromedp.Focus(chromedp.CSS(`#version-slider`)), chromedp.KeyEvent(kb.Home))
	until("see the product at version 1", `document.querySelector('#version-label')?.textContent === 'version 1 of 2' && `+
		`document.querySelector('#agg-state td[data-field=stock]')?.textContent === '3' && `+
		`document.querySelector('#agg-event-type')?.textContent === 'ProductCreated'`)
	screenshot("4b-aggregate-product.png")
	do("move the slider to version 2", chromedp.Focus(chromedp.CSS(`#version-slider`)), chromedp.KeyEvent(kb.End))
	until("see the product at version 2 again", `document.querySelector('#version-label')?.textContent === 'version 2 of 2' && `+
		`document.querySelector('#agg-state td[data-field=stock]')?.textContent === '5' && `+
		`document.querySelector('#agg-changes td.before')?.textContent === '3' && document.querySelector('#agg-changes td.after')?.textContent === '5'`)

	// The streams list links the product's stream to the aggregate view.
	productStream := "product-" + productID
	do("search for the product's stream", chromedp.Navigate(srv.URL+explorer.Path+"#/streams?prefix="+url.QueryEscape(productStream)))
	productLink := `[...document.querySelectorAll('#stream-results tr')].find(tr => tr.querySelector('a.stream-link')?.textContent === ` + jsString(productStream) + `)?.querySelector('a.aggregate-link')`
	until("find the product's stream with a link to it", productLink+`?.textContent === 'as product'`)
	do("open the product from the streams list", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](productLink+`.click()`)(ctx, t)
		return err
	}))
	until("see the product opened from the streams list", `document.querySelector('#agg-kind')?.value === 'product' && `+
		`document.querySelector('#version-label')?.textContent === 'version 2 of 2' && `+
		`document.querySelector('#agg-state td[data-field=stock]')?.textContent === '5'`)

	// The live tail: events appended through the API appear; after a pause, what was appended
	// meanwhile appears once on resume, also when the tail was paused before its first event.
	// It starts where the feed is: wait until the feed has passed the product's events, which
	// a transaction of another database on the cluster may have kept out of the global order
	// until now (the horizon is cluster-wide), or the tail would show them as new.
	productAt, err := eventstore.ParsePosition(restocked.Position)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); parts.hub.Stats().Last.Compare(productAt) < 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the feed had not passed the product's last event (%s) within 20s: it is at %s", productAt, parts.hub.Stats().Last)
		}
	}
	do("open the live tail", chromedp.Navigate(srv.URL+explorer.Path+"#/live"))
	until("see the live tail connected", `document.querySelector('#live-status')?.dataset.state === 'live'`)
	waitSubscribers := func(step string, want func(int) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !want(parts.hub.Stats().Subscribers); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				fail(step, errors.New("the hub's subscribers did not change within 20s"))
			}
		}
	}
	waitSubscribers("wait for the live tail's subscription to reach the server", func(n int) bool { return n > 0 })
	const appendM = `mutation($s: String!, $t: String!) { appendEvents(streamId: $s, events: [{type: $t, data: {}, tags: ["live:1", "explorer:tags"]}]) { position } }`
	var appended struct{ Position string }
	appendLive := func(stream, typ string) {
		t.Helper()
		ok(t, gql(t, addr, appendM, map[string]any{"s": stream, "t": typ}), "appendEvents", &appended)
	}
	shown := func(step, stream string) {
		t.Helper()
		until(step, `[...document.querySelectorAll('#live-list li a')].some(a => a.textContent === `+jsString(stream)+`)`)
	}
	pause := func() {
		t.Helper()
		do("pause the live tail", chromedp.Click(chromedp.CSS(`#live-toggle`)))
		until("see the live tail paused", `document.querySelector('#live-status')?.dataset.state === 'paused'`)
	}
	resume := func() {
		t.Helper()
		do("resume the live tail", chromedp.Click(chromedp.CSS(`#live-toggle`)))
	}

	// Paused before any event: the subscription stays until the first event, which is held
	// back and gives the place to resume from; the next one comes after it has ended.
	pause()
	appendLive("live-explorer0", "CameWhilePaused")
	waitSubscribers("wait for the first event to end the paused subscription", func(n int) bool { return n == 0 })
	appendLive("live-explorer0b", "CameWhileNothingListened")
	if n, err := chromedp.Run(browserCtx, chromedp.Evaluate[int](`document.querySelectorAll('#live-list li').length`)); err != nil || n != 0 {
		t.Errorf("the paused live tail shows %d events (%v), want none until it resumes", n, err)
	}
	resume()
	shown("see the events appended while paused", "live-explorer0b")

	appendLive("live-explorer1", "WentLive")
	shown("see the appended event in the live tail", "live-explorer1")
	until("see the event's tags in the live tail", `[...document.querySelectorAll('#live-list li')].some(li => li.querySelector('a')?.textContent === 'live-explorer1' && `+
		`[...li.querySelectorAll('.tag')].map(x => x.textContent).join(',') === 'live:1,explorer:tags')`)
	pause()
	waitSubscribers("wait for the paused subscription to end on the server", func(n int) bool { return n == 0 })
	appendLive("live-explorer2", "WentLiveWhilePaused")
	resume()
	shown("see the event appended while paused", "live-explorer2")
	rows, err := chromedp.Run(browserCtx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#live-list li a')].map(a => a.textContent)`))
	if err != nil {
		fail("read the live tail", err)
	}
	if got, want := strings.Join(rows, " "), "live-explorer2 live-explorer1 live-explorer0b live-explorer0"; got != want {
		t.Errorf("the live tail shows streams %q, want %q: each once, newest first", got, want)
	}

	// Filters: a new subscription from the last position, with only what matches.
	do("filter the live tail",
		chromedp.SendKeys(chromedp.CSS(`#live-category`), "kept"),
		chromedp.SendKeys(chromedp.CSS(`#live-types`), "Wanted, AlsoWanted"),
		chromedp.Click(chromedp.CSS(`#live-apply`)))
	appendLive("other-1", "Wanted")    // another category
	appendLive("kept-1", "NotWanted")  // another type
	appendLive("kept-2", "AlsoWanted") // both match
	shown("see the event that matches the filters", "kept-2")
	rows, err = chromedp.Run(browserCtx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#live-list li a')].map(a => a.textContent)`))
	if err != nil {
		fail("read the filtered live tail", err)
	}
	if got, want := strings.Join(rows, " "), "kept-2 live-explorer2 live-explorer1 live-explorer0b live-explorer0"; got != want {
		t.Errorf("the filtered live tail shows streams %q, want %q", got, want)
	}
	screenshot("5-live-tail.png")

	// Statistics: the projections and their lag.
	do("open statistics", chromedp.Navigate(srv.URL+explorer.Path+"#/stats"))
	until("see the projections", `document.querySelectorAll('#projections tbody tr').length > 0`)
	if got := text("read the projections", `#projections`); !strings.Contains(got, "orders") || !strings.Contains(got, "users") {
		t.Errorf("the projections table reads %q, want the orders and users projections", got)
	}
	// The chart of the last hour per minute: 60 or 61 buckets (the range's ends need not fall
	// on minutes), and its total counts this test's events, which its database holds alone.
	until("see the events per minute", `document.querySelectorAll('#chart svg rect.bar').length >= 60`)
	var all struct{ Edges []struct{ Cursor string } }
	ok(t, gql(t, addr, `{ allEvents(first: 100) { edges { cursor } } }`, nil), "allEvents", &all)
	if got, want := text("read the chart's total", `#chart p`), fmt.Sprintf("%d events,", len(all.Edges)); !strings.HasPrefix(got, want) {
		t.Errorf("the chart says %q, want it to start %q: every event of the log", got, want)
	}
	screenshot("6-statistics.png")

	// An event's tags on its stream's timeline.
	do("open a tagged event's stream", chromedp.Navigate(srv.URL+explorer.Path+"#/stream/live-explorer1?last=1"))
	until("see the event's tags on the timeline", `[...document.querySelectorAll('#timeline li .tag')].map(x => x.textContent).join(',') === 'live:1,explorer:tags'`)

	// A stream of 100,000 events: its last page is 50 of them, and the page asks for no more.
	const big = 100000
	for v := 0; v < big; v += 1000 {
		batch := make([]eventstore.EventData, 1000)
		for i := range batch {
			batch[i] = eventstore.EventData{Type: "Ticked", Data: json.RawMessage(`{}`)}
		}
		if _, err := parts.resolver.Store.Append(t.Context(), "big-1", eventstore.Exactly(int64(v)), batch); err != nil {
			t.Fatal(err)
		}
	}
	do("open the big stream's last page", chromedp.Navigate(srv.URL+explorer.Path+"#/stream/big-1?last=1"))
	until("see the big stream's last page", `document.querySelectorAll('#timeline li').length === 50 && `+
		`document.querySelector('#timeline li:last-child')?.dataset.version === '100000'`)
	if got := text("read the big stream's pager", `#stream-view .pager span`); got != "versions 99951–100000 of 100000" {
		t.Errorf("the big stream's pager says %q, want versions 99951–100000 of 100000", got)
	}
	do("page to the events before", chromedp.Click(chromedp.CSS(`#stream-view .pager button:nth-of-type(2)`)))
	until("see the page before", `document.querySelector('#timeline li')?.dataset.version === '99901' && document.querySelectorAll('#timeline li').length === 50`)

	// Versions hidden by truncateBefore: the timeline starts at the first one kept.
	ok(t, gql(t, addr, `mutation { setStreamMetadata(streamId: "big-1", truncateBefore: 1001) { firstVersion } }`, nil), "setStreamMetadata", &struct{}{})
	do("open the truncated stream from version 1", chromedp.Navigate(srv.URL+explorer.Path+"#/stream/big-1?from=1"))
	until("see the truncated stream from its first kept version", `document.querySelector('#timeline li')?.dataset.version === '1001'`)

	if sockets := b.checkOwnOrigin(srv.URL); sockets < 3 {
		t.Errorf("the page opened %d WebSockets, want one for the live tail and one after each resume", sockets)
	}
	t.Logf("screenshots in %s", shots)
}

// browser is a headless Chromium tab that records what its page requests and reports.
type browser struct {
	t      *testing.T
	ctx    context.Context
	cancel []context.CancelFunc

	mu       sync.Mutex
	requests []string
	sockets  []string // WebSocket URLs, which are no requests to the network domain
	problems []string // thrown exceptions, console errors, failed loads, policy violations
}

// openBrowser starts Chromium with the flags that keep it from reaching outside hosts on its
// own, and a tab that records requests, WebSockets and problems from its first command.
func openBrowser(t *testing.T) *browser {
	t.Helper()
	b := &browser{t: t}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	allocCtx, cancelAlloc := newChromium(ctx, t)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(b.record))
	// cancelAlloc waits for the browser process to exit.
	b.ctx, b.cancel = browserCtx, []context.CancelFunc{cancelBrowser, cancelAlloc, cancel}
	if err := chromedp.Do(browserCtx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{})
		return err
	})); err != nil {
		b.close()
		t.Fatalf("start Chromium: %v", err)
	}
	return b
}

func (b *browser) close() {
	for _, c := range b.cancel {
		c()
	}
}

// record runs in the tab's message loop: it records and returns.
func (b *browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *network.EventWebSocketCreated:
		b.sockets = append(b.sockets, ev.URL)
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, "exception: "+ev.ExceptionDetails.Text+" "+describe(ev.ExceptionDetails.Exception))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			text := string(ev.Type) + ":"
			for _, arg := range ev.Args {
				text += " " + describe(arg) + string(arg.Value)
			}
			b.problems = append(b.problems, text)
		}
	case *cdplog.EventEntryAdded:
		// The browser's own warnings change with its version; its errors (failed loads) and
		// policy violations are the page's doing.
		if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Source == cdplog.EntrySourceSecurity {
			b.problems = append(b.problems, fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

// fail ends the test with what the page showed, which says more than a timeout does.
func (b *browser) fail(step string, err error) {
	b.t.Helper()
	body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
	b.mu.Lock()
	reported := strings.Join(b.problems, "\n")
	b.mu.Unlock()
	b.t.Fatalf("in the Explorer, %s: %v\nthe page reported:\n%.2000s\npage text:\n%.3000s", step, err, reported, body)
}

func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

// until waits for a JavaScript condition to hold.
func (b *browser) until(step, cond string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.fail(step, err)
	}
}

func (b *browser) text(step, selector string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		b.fail(step, err)
	}
	return strings.TrimSpace(s)
}

// screenshot writes the whole page as a PNG.
func (b *browser) screenshot(file string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		b.fail("take the screenshot "+filepath.Base(file), err)
	}
	if err := os.WriteFile(file, png, 0o600); err != nil {
		b.t.Fatal(err)
	}
}

// checkOwnOrigin fails the test for each problem the page reported and each request or
// WebSocket to anywhere but server; it returns how many WebSockets the page opened.
func (b *browser) checkOwnOrigin(server string) int {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the page reported: %.300s", p)
	}
	own, err := url.Parse(server)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, r := range b.requests {
		u, err := url.Parse(r)
		switch {
		case err != nil:
			b.t.Errorf("the page requested %q, which does not parse: %v", r, err)
		case u.Scheme == "data" || u.Scheme == "blob": // made in the page, fetch nothing
		case u.Host != own.Host:
			b.t.Errorf("the page requested %s, which is not the server it came from (%s)", r, own.Host)
		}
	}
	for _, s := range b.sockets {
		if u, err := url.Parse(s); err != nil || u.Scheme != "ws" || u.Host != own.Host || u.Path != "/query" {
			b.t.Errorf("the page opened a WebSocket to %s, want ws://%s/query", s, own.Host)
		}
	}
	return len(b.sockets)
}

// With authentication on, the Explorer asks for a token, keeps it in the tab's sessionStorage
// (never localStorage), and sends it as a bearer token with its queries and in the live
// tail's connection_init.
func TestExplorerSendsItsTokenWithQueriesAndSubscriptions(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the Explorer test drives headless Chromium at %s: %v; install Debian's chromium package (apt-get install -y chromium; .ci/run does)", chromiumPath, err)
	}
	s := startAuthServer(t)
	writer := s.token(t, "walt", "writer", time.Hour)
	reader := s.token(t, "rita", "reader", time.Hour)
	const appendM = `mutation($s: String!) { appendEvents(streamId: $s, events: [{type: "Noted", data: {}}]) { position } }`
	if _, r := gqlAs(t, s.addr, writer, appendM, map[string]any{"s": "authdemo-1"}); len(r.Errors) > 0 {
		t.Fatalf("append: %+v", r.Errors)
	}
	server := "http://" + s.addr

	b := openBrowser(t)
	defer b.close()
	b.do("open /explorer without a token", chromedp.Navigate(server+explorer.Path+"#/streams?prefix=authdemo"))
	b.until("see the server ask for a token", `document.querySelector('#stream-results')?.textContent.includes('UNAUTHENTICATED')`)
	b.mu.Lock()
	b.problems = nil // the browser reports the 401 as a failed load, which it was meant to be
	b.mu.Unlock()
	b.do("give the token",
		chromedp.SendKeys(chromedp.CSS(`#token`), reader),
		chromedp.Click(chromedp.CSS(`form.token button`)),
	)
	b.until("see the stream with the token", `[...document.querySelectorAll('#stream-results a.stream-link')].some(a => a.textContent === 'authdemo-1')`)
	stored, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]any](`[sessionStorage.getItem('strata.explorer.token'), localStorage.length]`))
	if err != nil {
		b.fail("read the storage", err)
	}
	if len(stored) != 2 || stored[0] != reader || stored[1] != float64(0) {
		t.Errorf("sessionStorage token and localStorage size are %v, want the reader token and 0", stored)
	}

	b.do("open the live tail", chromedp.Navigate(server+explorer.Path+"#/live"))
	b.until("see the live tail connected", `document.querySelector('#live-status')?.dataset.state === 'live'`)
	// The server registers the subscription a moment after it acknowledged the connection,
	// and delivers only events appended after that: append until one shows.
	for i := 1; ; i++ {
		if _, r := gqlAs(t, s.addr, writer, appendM, map[string]any{"s": fmt.Sprintf("authlive-%d", i)}); len(r.Errors) > 0 {
			t.Fatalf("append: %+v", r.Errors)
		}
		shown, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.querySelector('#live-list')?.textContent.includes('authlive-')`,
			chromedp.WithPollingTimeout(time.Second)))
		if err == nil && shown {
			break
		}
		if i == 20 {
			b.fail("see an event in the live tail", err)
		}
	}
	b.checkOwnOrigin(server)
}
