package readdeadline_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-es/strata/internal/transport/readdeadline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const timeout = 300 * time.Millisecond

// serve runs h behind Body(timeout) on a real listener; the test's end stops it.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(readdeadline.Body(timeout, h))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// outlive waits three times the timeout, or until the request's context ends, and says which.
func outlive(r *http.Request) error {
	select {
	case <-r.Context().Done():
		return r.Context().Err()
	case <-time.After(3 * timeout):
		return nil
	}
}

// A body that stops arriving fails to read once the timeout has passed, and the connection is
// closed after the answer.
func TestStalledBodyIsCutOff(t *testing.T) {
	readErr := make(chan error, 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if readdeadline.TimedOut(err) {
			http.Error(w, "too slow", http.StatusRequestTimeout)
		}
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{\"query\":"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(conn)
	took := time.Since(start)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection was still open %s after the body stalled (read: %v)", took, err)
	}
	if took < timeout {
		t.Errorf("the connection was closed after %s, before the timeout of %s", took, timeout)
	}
	if err := <-readErr; !readdeadline.TimedOut(err) {
		t.Errorf("the handler's read of the stalled body returned %v, want a deadline error", err)
	}
	if !strings.HasPrefix(string(answer), "HTTP/1.1 408") {
		t.Errorf("answer %q, want the handler's 408", answer)
	}
}

// Once the body has been read the deadline is lifted: a handler that streams its answer for
// longer than the timeout is not cut off, and its request is not cancelled.
func TestDeadlineIsLiftedOnceTheBodyIsRead(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write(append(body, '\n'))
		_ = http.NewResponseController(w).Flush()
		if err := outlive(r); err != nil {
			_, _ = io.WriteString(w, "cancelled: "+err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "done\n")
	})
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the streamed answer broke off after %q: %v", got, err)
	}
	if string(got) != "hello\ndone\n" {
		t.Errorf("answer %q, want the body echoed and then done", got)
	}
}

// A request without a body, a WebSocket upgrade among them, gets no deadline: the handler may
// hold it, and a connection it takes over, for longer than the timeout.
func TestRequestWithoutBodyGetsNoDeadline(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			if err := outlive(r); err != nil {
				http.Error(w, "cancelled: "+err.Error(), http.StatusInternalServerError)
			}
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = buf.Flush()
		// Echo one line, which the client sends only after the timeout has passed.
		line, err := buf.ReadString('\n')
		if err != nil {
			line = "read: " + err.Error() + "\n"
		}
		_, _ = io.WriteString(conn, line)
	})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a GET held for three times the timeout: %s", resp.Status)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	up, err := http.ReadResponse(r, nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", up, err)
	}
	time.Sleep(3 * timeout) // the connection sits quiet for longer than the timeout
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if echo, err := r.ReadString('\n'); echo != "ping\n" {
		t.Errorf("the upgraded connection answered %q (%v), want ping", echo, err)
	}
}
