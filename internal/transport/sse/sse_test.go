package sse_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/testkit"
	"github.com/strata-es/strata/internal/transport/sse"
)

// serve runs handle behind a real server for one test; results gets what handle sends back.
func serve(t *testing.T, o sse.Options, handle func(*sse.Stream, <-chan struct{}) string) (*httptest.Server, <-chan string) {
	t.Helper()
	results := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ctx, err := sse.Start(w, r, o)
		if err != nil {
			results <- "start: " + err.Error()
			return
		}
		res := handle(s, ctx.Done())
		s.Close() // before the result is sent, so that the test sees the stream gone with it
		results <- res
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// open sends a GET and returns a reader of its answer, the headers read.
func open(t *testing.T, url string) (*bufio.Reader, *http.Response) {
	t.Helper()
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	return bufio.NewReader(resp.Body), resp
}

// readUntil reads lines until one equals want, failing t when the answer ends first.
func readUntil(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the answer ended before %q: %v", want, err)
		}
		if strings.TrimSuffix(line, "\n") == want {
			return
		}
	}
}

// Events are framed as the format has it, a quiet stream gets keep-alive comments, and the
// handler's end ends the answer.
func TestEventsAndKeepAlives(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv, results := serve(t, sse.Options{KeepAlive: 50 * time.Millisecond}, func(s *sse.Stream, done <-chan struct{}) string {
		if err := s.Event("next", "{\"a\":1}\n{\"b\":2}"); err != nil {
			return err.Error()
		}
		<-done // the client's end
		return "done"
	})
	r, resp := open(t, srv.URL)
	readUntil(t, r, "event: next")
	readUntil(t, r, `data: {"a":1}`)
	readUntil(t, r, `data: {"b":2}`)
	readUntil(t, r, ": keep-alive")
	readUntil(t, r, ": keep-alive")
	_ = resp.Body.Close()
	if got := <-results; got != "done" {
		t.Errorf("handler: %s", got)
	}
}

// A client that stops reading: a write times out, the stream ends as a slow consumer, and its
// context ends.
func TestClientThatStopsReadingIsCutOff(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	srv, results := serve(t, sse.Options{WriteTimeout: 200 * time.Millisecond, KeepAlive: time.Hour}, func(s *sse.Stream, done <-chan struct{}) string {
		big := strings.Repeat("x", 64<<10)
		start := time.Now()
		for {
			if err := s.Event("next", big); err != nil {
				select {
				case <-done:
				default:
					return "context not ended"
				}
				return fmt.Sprintf("timed out %v, slow %v, after %s", sse.TimedOut(err), s.SlowConsumer(), time.Since(start).Round(time.Second))
			}
		}
	})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-results:
		if !strings.HasPrefix(got, "timed out true, slow true") {
			t.Errorf("handler: %s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a client that does not read held the handler for 30s")
	}
}

// CloseAll ends every open stream with its reason, and a stream that opens after it at once.
func TestRegistryCloseAll(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	reg := sse.NewRegistry()
	srv, results := serve(t, sse.Options{Registry: reg, KeepAlive: time.Hour}, func(s *sse.Stream, done <-chan struct{}) string {
		<-done
		if err := s.Event("next", "{}"); !errors.Is(err, sse.ErrEnded) {
			return fmt.Sprintf("a write after the end: %v", err)
		}
		return s.Reason()
	})
	r, _ := open(t, srv.URL)
	readUntil(t, r, ":")
	for reg.Len() != 1 {
		time.Sleep(time.Millisecond) // Start registers the stream just after its first write
	}
	if n := reg.CloseAll("stopping"); n != 1 {
		t.Errorf("CloseAll ended %d streams, want 1", n)
	}
	readUntil(t, r, ": stopping")
	if got := <-results; got != "stopping" {
		t.Errorf("handler: %s", got)
	}
	r, _ = open(t, srv.URL)
	readUntil(t, r, ": stopping")
	if got := <-results; got != "stopping" {
		t.Errorf("a stream opened after CloseAll: %s", got)
	}
	if reg.Len() != 0 {
		t.Errorf("%d streams still registered", reg.Len())
	}
}

// End waits briefly for a write in progress (a keep-alive, say) rather than leaving out the
// reason, and nothing is written after the reason.
func TestEndWaitsForAWriteInProgress(t *testing.T) {
	testkit.VerifyNoLeaks(t)
	reg := sse.NewRegistry()
	held := make(chan func())
	srv, results := serve(t, sse.Options{Registry: reg, KeepAlive: time.Hour}, func(s *sse.Stream, done <-chan struct{}) string {
		held <- sse.HoldWrite(s)
		<-done
		return s.Reason()
	})
	r, _ := open(t, srv.URL)
	readUntil(t, r, ":")
	release := <-held
	ended := make(chan int)
	go func() { ended <- reg.CloseAll("stopping") }()
	// CloseAll is waiting on the held write: it can end nothing before release.
	select {
	case n := <-ended:
		t.Fatalf("CloseAll returned %d while a write was in progress", n)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if n := <-ended; n != 1 {
		t.Errorf("CloseAll ended %d streams, want 1", n)
	}
	readUntil(t, r, ": stopping")
	if got := <-results; got != "stopping" {
		t.Errorf("handler: %s", got)
	}
	// The comment's blank line, then the end of the answer.
	if rest, err := r.ReadString(0); rest != "\n" || err == nil {
		t.Errorf("after the reason: %q, %v", rest, err)
	}
}
