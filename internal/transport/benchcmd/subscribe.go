package benchcmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/serveproc"
	"github.com/strata-es/strata/internal/testsupport/bench"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
	"github.com/strata-es/strata/internal/transport/cli"
)

// benchSubscribeCmd runs `strata bench subscribe`. Without --url it starts `strata serve` as a
// child process on a scratch database, so that one command measures everything and the
// server's memory is its own; with --url it measures a server already running.
func benchSubscribeCmd(ctx context.Context, env *cli.Env, pg Postgres, args []string) error {
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
			opts.CPU = func() (time.Duration, error) { return processCPUTime(serverPID) }
		}
	} else {
		srv, stop, err := serveOnScratch(ctx, env, pg, cfg, logger, scratch, serverBin)
		if err != nil {
			return err
		}
		defer stop()
		opts.URL = "http://" + srv.Addr
		opts.Memory = func() (float64, float64, error) { return processMemoryMB(srv.Cmd.Process.Pid) }
		opts.CPU = func() (time.Duration, error) { return processCPUTime(srv.Cmd.Process.Pid) }
	}
	opts.Progress = env.Stderr
	res, runErr := bench.Subscribe(ctx, opts)
	return printResult(env, res, runErr)
}

// serveOnScratch starts `strata serve` (serverBin, or this executable) on a scratch database
// made afresh on the server of cfg (a private cluster when DATABASE_URL is unset); stop stops
// the server, drops the database and stops the cluster, in that order.
func serveOnScratch(ctx context.Context, env *cli.Env, pg Postgres, cfg config.Config, logger *slog.Logger, scratch, serverBin string) (srv *serveproc.Server, stop func(), err error) {
	srvs, _, stop, err := serveReplicasOnScratch(ctx, env, pg, cfg, logger, scratch, serverBin, 1)
	if err != nil {
		return nil, nil, err
	}
	return srvs[0], stop, nil
}

// serveReplicasOnScratch is serveOnScratch with n servers sharing the one scratch database, as
// replicas of one deployment would. serverURL is the PostgreSQL server's URL (its maintenance
// database, not the scratch one).
func serveReplicasOnScratch(ctx context.Context, env *cli.Env, pg Postgres, cfg config.Config, logger *slog.Logger, scratch, serverBin string, n int) (srvs []*serveproc.Server, serverURL string, stop func(), err error) {
	serverURL, _, undo, err := scratchServer(ctx, pg, cfg, logger, scratch)
	if err != nil {
		return nil, "", nil, err
	}
	dbURL, err := databaseURLFor(serverURL, scratch)
	for i := 0; err == nil && i < n; i++ {
		var srv *serveproc.Server
		if srv, err = serveproc.Start(ctx, env.Stderr, cfg, serverBin, dbURL); err == nil {
			srvs = append(srvs, srv)
			undo.add(srv.Stop)
		}
	}
	if err != nil {
		undo.run()
		return nil, "", nil, err
	}
	return srvs, serverURL, undo.run, nil
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

// processCPUTime is a process's CPU time so far (user + system).
func processCPUTime(pid int) (time.Duration, error) {
	_, cpu, err := processCPU(pid)
	if err != nil {
		return 0, fmt.Errorf("server CPU time: %w", err)
	}
	return cpu, nil
}
