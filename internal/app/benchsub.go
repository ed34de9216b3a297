package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-es/strata/internal/bench"
	"github.com/strata-es/strata/internal/cli"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/wsclient"
)

// benchSubscribeCmd runs `strata bench subscribe`. Without --url it starts `strata serve` as a
// child process on a scratch database, so that one command measures everything and the
// server's memory is its own; with --url it measures a server already running.
func benchSubscribeCmd(ctx context.Context, env *cli.Env, args []string) error {
	opts := bench.SubscribeOptions{}
	var (
		scratch, serverBin string
		serverPID          int
	)
	cfg, _, err := cli.Parse(env, "bench subscribe", args, func(_ *config.Config, f *config.FlagSet) {
		f.String(&opts.URL, "url", "STRATA_BENCH_URL", "", "the server's HTTP base (http://host:port); empty starts strata serve on a scratch database")
		f.Int(&serverPID, "server-pid", "STRATA_BENCH_SERVER_PID", 0, "with --url: the server's process id, to report its memory (0: not reported)")
		f.String(&serverBin, "server-bin", "STRATA_BENCH_SERVER_BIN", "", "without --url: the strata binary to start the server with; empty is this one")
		f.Int(&opts.StreamSubscribers, "stream-subscribers", "STRATA_BENCH_STREAM_SUBSCRIBERS", 2000, "subscribers each following a stream of its own")
		f.Int(&opts.AllSubscribers, "all-subscribers", "STRATA_BENCH_ALL_SUBSCRIBERS", 20, "subscribers following every event of the benchmark")
		f.Int(&opts.Rate, "rate", "STRATA_BENCH_RATE", 500, "events appended per second")
		f.Duration(&opts.Duration, "duration", "STRATA_BENCH_DURATION", 30*time.Second, "how long to append")
		f.String(&opts.Protocol, "protocol", "STRATA_BENCH_PROTOCOL", wsclient.TransportWS, "WebSocket subprotocol: graphql-transport-ws or graphql-ws")
		f.Int(&opts.Writers, "writers", "STRATA_BENCH_WRITERS", 8, "concurrent appenders sharing the rate")
		f.String(&scratch, "scratch-db", "STRATA_BENCH_DB", "strata_bench", "without --url: database made afresh on the server for the run and dropped after it")
	})
	if err != nil {
		return err
	}
	if err := validOptions(env, opts); err != nil {
		return err
	}
	// Each subscriber is a socket here and, when the server is a child, one there too (the
	// child inherits the limit).
	if err := raiseFileLimit(uint64(opts.StreamSubscribers+opts.AllSubscribers+opts.Writers) + 256); err != nil { //nolint:gosec // validated, small
		return err
	}
	logger := cli.NewLogger(cfg, env.Stderr)
	if opts.URL != "" {
		if serverPID > 0 {
			opts.Memory = func() (float64, float64, error) { return processMemoryMB(serverPID) }
		}
	} else {
		srv, stop, err := serveOnScratch(ctx, env, cfg, logger, scratch, serverBin)
		if err != nil {
			return err
		}
		defer stop()
		opts.URL = "http://" + srv.addr
		opts.Memory = func() (float64, float64, error) { return processMemoryMB(srv.cmd.Process.Pid) }
	}
	opts.Progress = env.Stderr
	res, runErr := bench.Subscribe(ctx, opts)
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, string(line))
	return runErr
}

// serveOnScratch starts `strata serve` (serverBin, or this executable) on a scratch database
// made afresh on the server of cfg (a private cluster when DATABASE_URL is unset); stop stops
// the server, drops the database and stops the cluster, in that order.
func serveOnScratch(ctx context.Context, env *cli.Env, cfg config.Config, logger *slog.Logger, scratch, serverBin string) (srv *childServer, stop func(), err error) {
	srvs, stop, err := serveReplicasOnScratch(ctx, env, cfg, logger, scratch, serverBin, 1)
	if err != nil {
		return nil, nil, err
	}
	return srvs[0], stop, nil
}

// serveReplicasOnScratch is serveOnScratch with n servers sharing the one scratch database, as
// replicas of one deployment would.
func serveReplicasOnScratch(ctx context.Context, env *cli.Env, cfg config.Config, logger *slog.Logger, scratch, serverBin string, n int) (srvs []*childServer, stop func(), err error) {
	serverURL, _, undo, err := scratchServer(ctx, cfg, logger, scratch)
	if err != nil {
		return nil, nil, err
	}
	dbURL, err := databaseURLFor(serverURL, scratch)
	for i := 0; err == nil && i < n; i++ {
		var srv *childServer
		if srv, err = startServer(ctx, env, cfg, serverBin, dbURL); err == nil {
			srvs = append(srvs, srv)
			undo.add(srv.stop)
		}
	}
	if err != nil {
		undo.run()
		return nil, nil, err
	}
	return srvs, undo.run, nil
}

func databaseURLFor(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("bench subscribe needs DATABASE_URL as a postgres:// URL, not %s", config.DescribeDB(serverURL))
	}
	if name != "" {
		u.Path = "/" + name
	}
	return u.String(), nil
}

// childServer is `strata serve` run by the benchmark.
type childServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's error, once done is closed
}

// startServer starts `bin serve` (this executable when bin is empty) on a free local port
// against dbURL, with extra arguments if any, and waits until it is ready.
func startServer(ctx context.Context, env *cli.Env, cfg config.Config, bin, dbURL string, extra ...string) (*childServer, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench subscribe: cannot find this executable to start the server: %w", err)
		}
		bin = exe
	}
	addr, err := freeLocalAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", addr, "--database-url", dbURL, //nolint:noctx // stopped with SIGTERM by stop, not killed by a context
		"--db-max-conns", strconv.Itoa(cfg.DBMaxConns), "--log-level", strings.ToLower(cfg.LogLevel.String()), "--log-format", cfg.LogFormat)
	if cfg.GroupWriters > 0 { // a parsed configuration: the server groups as this command was told
		cmd.Args = append(cmd.Args, "--group-commit="+strconv.FormatBool(cfg.GroupCommit), "--group-writers", strconv.Itoa(cfg.GroupWriters),
			"--group-max-events", strconv.Itoa(cfg.GroupMaxEvents), "--group-max-bytes", strconv.Itoa(cfg.GroupMaxBytes))
	}
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = env.Stderr, env.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server (%s serve): %w", bin, err)
	}
	s := &childServer{addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			s.stop()
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
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("the server (%s serve) was not ready within 60s", bin)
		}
	}
}

// freeLocalAddr returns a 127.0.0.1 address that was free a moment ago. serve takes its address
// before anything else, so the moment during which another process could take it is short.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// stop asks the server to stop (SIGTERM) and waits for it; after 30s it kills it.
func (s *childServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// processMemoryMB reads a process's resident memory now (VmRSS) and at its peak (VmHWM).
func processMemoryMB(pid int) (now, peak float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("server memory: %w", err)
	}
	defer func() { _ = f.Close() }()
	return parseProcStatus(f)
}

func parseProcStatus(r io.Reader) (now, peak float64, err error) {
	var found int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("server memory: unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("server memory: %w", err)
		}
		if key == "VmRSS" {
			now = kb / 1024
		} else {
			peak = kb / 1024
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found != 2 {
		return 0, 0, errors.New("server memory: no VmRSS and VmHWM in /proc/<pid>/status")
	}
	return now, peak, nil
}

// raiseFileLimit makes sure this process may open need files, raising its soft limit up to the
// hard one if it must.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("open-file limit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("the benchmark needs %d open files and the hard limit is %d: raise it (ulimit -Hn, then ulimit -n %d)", need, lim.Max, need)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("the benchmark needs %d open files: raising the limit: %w (try ulimit -n %d)", need, err, need)
	}
	return nil
}
