// Package serveproc runs `strata serve` as a child process: the servers the benchmarks measure,
// and those of the tests that must kill a server outright.
package serveproc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-es/strata/internal/platform/config"
)

// Server is a `strata serve` child process.
type Server struct {
	// Addr is the host:port it serves on.
	Addr string
	// Cmd is the process.
	Cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's error, once done is closed
}

// Start starts `bin serve` (this executable when bin is empty) on a free local port against
// dbURL, with cfg's pool size, logging and group commit settings and extra arguments if any,
// and waits until it is ready. The server writes its output to out.
func Start(ctx context.Context, out io.Writer, cfg config.Config, bin, dbURL string, extra ...string) (*Server, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench subscribe: cannot find this executable to start the server: %w", err)
		}
		bin = exe
	}
	addr, err := FreeLocalAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", addr, "--database-url", dbURL, //nolint:noctx // stopped with SIGTERM by Stop, not killed by a context
		"--db-max-conns", strconv.Itoa(cfg.DBMaxConns), "--log-level", strings.ToLower(cfg.LogLevel.String()), "--log-format", cfg.LogFormat)
	if cfg.GroupWriters > 0 { // a parsed configuration: the server groups as this command was told
		cmd.Args = append(cmd.Args, "--group-commit="+strconv.FormatBool(cfg.GroupCommit), "--group-writers", strconv.Itoa(cfg.GroupWriters),
			"--group-max-events", strconv.Itoa(cfg.GroupMaxEvents), "--group-max-bytes", strconv.Itoa(cfg.GroupMaxBytes))
	}
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server (%s serve): %w", bin, err)
	}
	s := &Server{Addr: addr, Cmd: cmd, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			s.Stop()
			return nil, err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("the server (%s serve) exited before it was ready: %w", bin, s.err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("the server (%s serve) was not ready within 60s", bin)
		}
	}
}

// FreeLocalAddr returns a 127.0.0.1 address that was free a moment ago. serve takes its address
// before anything else, so the moment during which another process could take it is short.
func FreeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err waits for the process to exit and returns how it ended (exec.Cmd.Wait's error).
func (s *Server) Err() error {
	<-s.done
	return s.err
}

// Stop asks the server to stop (SIGTERM) and waits for it; after 30s it kills it.
func (s *Server) Stop() {
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.Cmd.Process.Kill()
		<-s.done
	}
}
