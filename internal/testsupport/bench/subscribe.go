package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// SubscribeOptions configures a subscription benchmark against a running server.
type SubscribeOptions struct {
	// URL is the server's HTTP base, e.g. http://127.0.0.1:8080; the benchmark appends with
	// POST URL/query and subscribes over ws://…/query.
	URL string
	// StreamSubscribers each follow a stream of their own (events(streamId: …)); AllSubscribers
	// follow the benchmark's whole category (events(category: …)).
	StreamSubscribers int
	AllSubscribers    int
	Rate              int           // events appended per second, one event per append
	Duration          time.Duration // how long to append
	Protocol          string        // wsclient.TransportWS or wsclient.GraphQLWS
	Writers           int           // concurrent appenders sharing the rate
	// Grace is how long deliveries may trail the last append before the missing ones count
	// as lost; 0 means 10s.
	Grace time.Duration
	// Memory, when not nil, reports the server's memory in MB now and at its peak.
	Memory func() (now, peak float64, err error)
	// CPU, when not nil, reports the server's CPU time so far (user + system).
	CPU func() (time.Duration, error)
	// Progress, when not nil, receives a line per second.
	Progress io.Writer
}

// Category is the stream category the benchmark appends to: not one the domain owns, so
// appendEvents takes it.
const Category = "benchorder"

// Latency is a distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// SubscribeResult is what a subscription benchmark measured; it prints as one JSON line.
type SubscribeResult struct {
	Subscribers       int     `json:"subscribers"`
	StreamSubscribers int     `json:"stream_subscribers"`
	AllSubscribers    int     `json:"all_subscribers"`
	Protocol          string  `json:"protocol"`
	Seconds           float64 `json:"seconds"`
	Events            int64   `json:"events"`
	EventsPerSec      float64 `json:"events_per_sec"`
	Expected          int64   `json:"expected_deliveries"`
	Deliveries        int64   `json:"deliveries"`
	DeliveriesPerSec  float64 `json:"deliveries_per_sec"`
	// Latency runs from the append's HTTP response (the commit acknowledged) to the client's
	// receipt of the event. The response leaves after the commit, so this slightly understates
	// commit-to-receipt; a delivery that beats the response counts as 0.
	Latency Latency `json:"latency_ms"`
	// LatencyFromSend runs from the moment the append request was sent: an upper bound.
	LatencyFromSend Latency `json:"latency_from_send_ms"`
	Append          Latency `json:"append_ms"`
	Lost            int64   `json:"lost"`
	Duplicated      int64   `json:"duplicated"`
	OutOfOrder      int64   `json:"out_of_order"`
	Errors          int64   `json:"errors"`
	// ServerMemoryMB is the server's resident memory at the end of the appends and its peak;
	// null when unknown.
	ServerMemoryMB     *float64 `json:"server_memory_mb"`
	ServerPeakMemoryMB *float64 `json:"server_peak_memory_mb"`
	// ServerCPUUsPerDelivery is the server's CPU time from the first append to the last
	// delivery, per delivery, in microseconds: delivering, and taking the appends that feed it
	// (Events of them); left out when unknown.
	ServerCPUUsPerDelivery *float64 `json:"server_cpu_us_per_delivery,omitempty"`
}

// Validate checks the options before anything runs.
func (o SubscribeOptions) Validate() error {
	var errs []error
	if o.StreamSubscribers < 0 || o.AllSubscribers < 0 || o.StreamSubscribers+o.AllSubscribers < 1 {
		errs = append(errs, fmt.Errorf("--stream-subscribers and --all-subscribers must not be negative and not both 0, not %d and %d", o.StreamSubscribers, o.AllSubscribers))
	}
	if o.StreamSubscribers+o.AllSubscribers > 100000 {
		errs = append(errs, fmt.Errorf("at most 100000 subscribers, not %d", o.StreamSubscribers+o.AllSubscribers))
	}
	if o.Rate < 1 || o.Rate > 100000 {
		errs = append(errs, fmt.Errorf("--rate must be from 1 to 100000, not %d", o.Rate))
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration must be positive, not %s", o.Duration))
	}
	if o.Writers < 1 || o.Writers > 1000 {
		errs = append(errs, fmt.Errorf("--writers must be from 1 to 1000, not %d", o.Writers))
	}
	if o.Protocol != wsclient.TransportWS && o.Protocol != wsclient.GraphQLWS {
		errs = append(errs, fmt.Errorf("--protocol must be %s or %s, not %q", wsclient.TransportWS, wsclient.GraphQLWS, o.Protocol))
	}
	return errors.Join(errs...)
}

// receipt is one event a subscriber received: its sequence number (-1 for a warm-up event)
// and when it arrived, as time since the benchmark's epoch.
type receipt struct {
	seq int32
	at  time.Duration
}

// subscriber is one WebSocket connection with one subscription.
type subscriber struct {
	client   *wsclient.Client
	index    int
	stream   int // index of its stream; -1 for a whole-category subscriber
	receipts []receipt
	outOfOrd int64

	mu  sync.Mutex
	err error // why the subscription ended, if the server ended it
}

func (s *subscriber) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *subscriber) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// appendRecord is what the appender knows of one event.
type appendRecord struct {
	stream      int32
	ok          bool
	sent, acked time.Duration // since the epoch
}

type subscribeRun struct {
	opts    SubscribeOptions
	tag     string // this run's stream-id infix and data marker
	epoch   time.Time
	http    *http.Client
	streams int

	warmups    atomic.Int64
	deliveries atomic.Int64
	closing    atomic.Bool // the benchmark is closing the connections
}

const subscriptionQuery = `subscription Bench($after: String, $streamId: String, $category: String) {
  events(after: $after, streamId: $streamId, category: $category) { position type data }
}`

const appendMutation = `mutation BenchAppend($streamId: String!, $events: [EventInput!]!) {
  appendEvents(streamId: $streamId, events: $events) { position }
}`

const (
	typeMarker   = "BenchMarker"
	typeWarmUp   = "BenchWarmUp"
	typeMeasured = "BenchOrderPlaced"
)

// Subscribe runs the benchmark: it opens every subscriber (each from a marker position, so none
// misses an event while the others connect), appends one warm-up event to each stream and waits
// until every subscriber has it, then appends at the rate for the duration and waits for the
// deliveries to finish. Lost, duplicated and reordered deliveries are counted; a failed append
// or a subscription the server ended is an error returned with the result.
func Subscribe(ctx context.Context, opts SubscribeOptions) (SubscribeResult, error) {
	if err := opts.Validate(); err != nil {
		return SubscribeResult{}, err
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: opts.Writers, MaxIdleConns: opts.Writers}
	defer tr.CloseIdleConnections()
	r := &subscribeRun{
		opts: opts, tag: fmt.Sprintf("%x", time.Now().UnixNano()), epoch: time.Now(),
		http: &http.Client{Timeout: 30 * time.Second, Transport: tr}, streams: max(opts.StreamSubscribers, 1),
	}
	res := SubscribeResult{
		Subscribers:       opts.StreamSubscribers + opts.AllSubscribers,
		StreamSubscribers: opts.StreamSubscribers, AllSubscribers: opts.AllSubscribers, Protocol: opts.Protocol,
	}

	marker, err := r.append(ctx, r.streamID(-1), typeMarker, -1)
	if err != nil {
		return res, fmt.Errorf("marker append: %w", err)
	}
	subs, err := r.open(ctx, marker)
	defer func() {
		for _, s := range subs {
			if s.client != nil {
				_ = s.client.Close()
			}
		}
	}()
	if err != nil {
		return res, err
	}
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Go(func() { r.read(s) })
	}
	closeAll := func() {
		r.closing.Store(true)
		for _, s := range subs {
			_ = s.client.Close()
		}
		readers.Wait()
	}

	if err := r.warmUp(ctx, subs); err != nil {
		closeAll()
		return res, err
	}

	cpuAt := func() (time.Duration, bool) {
		if opts.CPU == nil {
			return 0, false
		}
		t, err := opts.CPU()
		if err != nil && opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: server CPU time: %v\n", err)
		}
		return t, err == nil
	}
	cpuStart, cpuKnown := cpuAt()
	records, elapsed, appendErr := r.appendPaced(ctx)
	if opts.Memory != nil {
		if now, peak, err := opts.Memory(); err == nil {
			res.ServerMemoryMB, res.ServerPeakMemoryMB = ptr(round(now, 1)), ptr(round(peak, 1))
		} else if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: server memory: %v\n", err)
		}
	}
	var expected int64
	for _, rec := range records {
		if rec.ok {
			res.Events++
			expected += int64(opts.AllSubscribers)
			if opts.StreamSubscribers > 0 {
				expected++
			}
		}
	}
	res.Expected = expected
	// Wait for the stragglers: every expected delivery, or the grace period.
	graceEnd := time.Now().Add(opts.Grace)
	for r.deliveries.Load() < expected && time.Now().Before(graceEnd) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // duplicates, if any, trail the last expected delivery
	if cpuEnd, ok := cpuAt(); cpuKnown && ok && r.deliveries.Load() > 0 {
		res.ServerCPUUsPerDelivery = ptr(round(float64((cpuEnd-cpuStart).Microseconds())/float64(r.deliveries.Load()), 1))
	}
	closeAll()

	r.tally(&res, subs, records, elapsed)
	var subErr error
	for _, s := range subs {
		if err := s.failure(); err != nil {
			res.Errors++
			if subErr == nil {
				subErr = fmt.Errorf("subscriber %d: %w", s.index, err)
			}
		}
	}
	for _, rec := range records {
		if !rec.ok {
			res.Errors++
		}
	}
	return res, errors.Join(appendErr, subErr, ctx.Err())
}

func ptr(f float64) *float64 { return &f }

// streamID names stream i of this run; -1 is the marker's stream, which no stream subscriber
// follows.
func (r *subscribeRun) streamID(i int) string {
	if i < 0 {
		return fmt.Sprintf("%s-%s-marker", Category, r.tag)
	}
	return fmt.Sprintf("%s-%s-%d", Category, r.tag, i)
}

func (r *subscribeRun) wsURL() string {
	u := strings.TrimSuffix(r.opts.URL, "/") + "/query"
	switch {
	case strings.HasPrefix(u, "https://"):
		return "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		return "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

// open dials every subscriber and starts its subscription after marker, a few at a time.
func (r *subscribeRun) open(ctx context.Context, marker string) ([]*subscriber, error) {
	n := r.opts.StreamSubscribers + r.opts.AllSubscribers
	subs := make([]*subscriber, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			s := &subscriber{index: i, stream: i}
			vars := map[string]any{"after": marker}
			if i < r.opts.StreamSubscribers {
				vars["streamId"] = r.streamID(i)
			} else {
				s.stream = -1
				vars["category"] = Category
			}
			c, err := wsclient.Dial(gctx, r.wsURL(), r.opts.Protocol, nil, nil)
			if err != nil {
				return fmt.Errorf("subscriber %d: %w", i, err)
			}
			s.client = c
			subs[i] = s
			if err := c.Subscribe("1", subscriptionQuery, vars); err != nil {
				return fmt.Errorf("subscriber %d: subscribe: %w", i, err)
			}
			return nil
		})
	}
	err := g.Wait()
	if err != nil {
		return slices.DeleteFunc(subs, func(s *subscriber) bool { return s == nil }), err
	}
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "bench: %d subscribers connected in %.1fs\n", n, time.Since(r.epoch).Seconds())
	}
	return subs, nil
}

// read records what s receives until its connection closes.
func (r *subscribeRun) read(s *subscriber) {
	var last string
	s.receipts = make([]receipt, 0, 64)
	for {
		res, err := s.client.Next(0)
		at := time.Since(r.epoch)
		if err != nil {
			if !r.closing.Load() {
				s.fail(err) // the server closed it, or it broke
			}
			return
		}
		if res.Done || len(res.Errors) > 0 {
			s.fail(fmt.Errorf("subscription ended: done=%v errors=%s", res.Done, res.Errors))
			return
		}
		var p struct {
			Events struct {
				Position string `json:"position"`
				Type     string `json:"type"`
				Data     struct {
					Run string `json:"run"`
					Seq int32  `json:"seq"`
				} `json:"data"`
			} `json:"events"`
		}
		if err := json.Unmarshal(res.Data, &p); err != nil {
			s.fail(fmt.Errorf("decode %s: %w", res.Data, err))
			return
		}
		e := p.Events
		if e.Data.Run != r.tag {
			continue // another run's event in the shared category
		}
		if last != "" && e.Position <= last {
			s.outOfOrd++
		}
		last = e.Position
		switch e.Type {
		case typeWarmUp:
			r.warmups.Add(1)
		case typeMeasured:
			s.receipts = append(s.receipts, receipt{seq: e.Data.Seq, at: at})
			r.deliveries.Add(1)
		}
	}
}

// warmUp appends one event to each stream and waits until every subscriber has received what
// it should of them: by then every subscription is live.
func (r *subscribeRun) warmUp(ctx context.Context, subs []*subscriber) error {
	// Give the server a moment to register the subscriptions, so that catch-up has little to read.
	time.Sleep(time.Second)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Writers)
	// At the benchmark's rate: a burst would overflow the whole-category subscribers' buffers.
	start, interval := time.Now(), time.Second/time.Duration(r.opts.Rate)
	for i := range r.streams {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		g.Go(func() error {
			_, err := r.append(gctx, r.streamID(i), typeWarmUp, -1)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("warm-up append: %w", err)
	}
	want := int64(r.opts.AllSubscribers) * int64(r.streams)
	if r.opts.StreamSubscribers > 0 {
		want += int64(r.opts.StreamSubscribers)
	}
	deadline := time.Now().Add(60 * time.Second)
	for r.warmups.Load() < want {
		for _, s := range subs {
			if err := s.failure(); err != nil {
				return fmt.Errorf("warm-up: subscriber %d: %w", s.index, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: %d of %d warm-up deliveries after 60s", r.warmups.Load(), want)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "bench: every subscriber live after %.1fs; appending %d events/s for %s\n",
			time.Since(r.epoch).Seconds(), r.opts.Rate, r.opts.Duration)
	}
	return nil
}

// appendPaced appends Rate events per second for Duration from Writers goroutines, each event
// to a random stream, and returns what it did per event and how long it took.
func (r *subscribeRun) appendPaced(ctx context.Context) ([]appendRecord, float64, error) {
	total := int(float64(r.opts.Rate) * r.opts.Duration.Seconds())
	records := make([]appendRecord, total)
	tokens := make(chan int, r.opts.Writers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		appended atomic.Int64
	)
	run := time.Now().UnixNano()
	for w := range r.opts.Writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(run), uint64(w))) //nolint:gosec // stream choice, not secrets
			for n := range tokens {
				rec := &records[n]
				rec.stream = int32(rng.IntN(r.streams)) //nolint:gosec // bounded by the subscriber limit
				rec.sent = time.Since(r.epoch)
				_, err := r.append(ctx, r.streamID(int(rec.stream)), typeMeasured, n)
				rec.acked = time.Since(r.epoch)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("append: %w", err) })
					continue
				}
				rec.ok = true
				appended.Add(1)
			}
		})
	}
	start := time.Now()
	stop := r.progress(start, &appended)
	interval := time.Second / time.Duration(r.opts.Rate)
	for n := 0; n < total && ctx.Err() == nil; n++ {
		if d := time.Until(start.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		tokens <- n
	}
	close(tokens)
	wg.Wait()
	stop()
	return records, time.Since(start).Seconds(), firstErr
}

func (r *subscribeRun) progress(start time.Time, appended *atomic.Int64) (stop func()) {
	return everySecond(context.Background(), r.opts.Progress, func(now time.Time) string {
		s := now.Sub(start).Seconds()
		return fmt.Sprintf("bench: %4.0fs of %s: %d events (%.0f/s), %d deliveries (%.0f/s)\n",
			s, r.opts.Duration, appended.Load(), float64(appended.Load())/s, r.deliveries.Load(), float64(r.deliveries.Load())/s)
	})
}

// append appends one event of type typ with sequence number seq to stream and returns the
// position the server reports.
func (r *subscribeRun) append(ctx context.Context, stream, typ string, seq int) (string, error) {
	body, err := json.Marshal(map[string]any{
		"query": appendMutation,
		"variables": map[string]any{
			"streamId": stream,
			"events":   []any{map[string]any{"type": typ, "data": map[string]any{"run": r.tag, "seq": seq}}},
		},
	})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(r.opts.URL, "/")+"/query", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var out struct {
		Data struct {
			AppendEvents *struct {
				Position string `json:"position"`
			} `json:"appendEvents"`
		} `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != http.StatusOK || len(out.Errors) > 0 || out.Data.AppendEvents == nil {
		return "", fmt.Errorf("POST /query: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return out.Data.AppendEvents.Position, nil
}

// tally matches receipts against appends.
func (r *subscribeRun) tally(res *SubscribeResult, subs []*subscriber, records []appendRecord, elapsed float64) {
	var fromAck, fromSend, appends []time.Duration
	for _, rec := range records {
		if rec.ok {
			appends = append(appends, rec.acked-rec.sent)
		}
	}
	perStream := make([]int64, r.streams) // events appended to each stream
	for _, rec := range records {
		if rec.ok {
			perStream[rec.stream]++
		}
	}
	for _, s := range subs {
		res.OutOfOrder += s.outOfOrd
		seen := make(map[int32]struct{}, len(s.receipts))
		for _, rc := range s.receipts {
			res.Deliveries++
			if rc.seq < 0 || int(rc.seq) >= len(records) || !records[rc.seq].ok ||
				(s.stream >= 0 && int(records[rc.seq].stream) != s.stream) {
				res.Errors++ // an event this subscriber should not have had
				continue
			}
			if _, dup := seen[rc.seq]; dup {
				res.Duplicated++
				continue
			}
			seen[rc.seq] = struct{}{}
			rec := records[rc.seq]
			fromAck = append(fromAck, max(0, rc.at-rec.acked))
			fromSend = append(fromSend, rc.at-rec.sent)
		}
		want := res.Events
		if s.stream >= 0 {
			want = perStream[s.stream]
		}
		res.Lost += want - int64(len(seen))
	}
	res.Seconds = round(elapsed, 2)
	res.EventsPerSec = round(float64(res.Events)/elapsed, 0)
	res.DeliveriesPerSec = round(float64(res.Deliveries)/elapsed, 0)
	res.Latency, res.LatencyFromSend, res.Append = distribution(fromAck), distribution(fromSend), distribution(appends)
}

func distribution(d []time.Duration) Latency {
	slices.Sort(d)
	return Latency{P50: quantileMs(d, 0.50), P99: quantileMs(d, 0.99), Max: quantileMs(d, 1)}
}
