// Package pgserver runs a private PostgreSQL cluster from the server binaries installed on the
// machine, so that development (`strata serve` without DATABASE_URL) and tests need no server set
// up by hand.
//
// The cluster is for development only: it trusts every connection (initdb -A trust) and listens
// on 127.0.0.1 alone, so any local user can connect to it as the superuser "postgres". Its data
// directory survives restarts; each start picks a new free port.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Superuser is the role initdb creates and URL connects as.
const Superuser = "postgres"

const (
	// pollInterval spaces pg_isready probes while the server starts.
	pollInterval = 50 * time.Millisecond
	// quitGrace is how long Stop waits after SIGQUIT (immediate shutdown) before it kills.
	quitGrace = 5 * time.Second
	// cleanupTimeout bounds the fast shutdown of a server that Start gives up on.
	cleanupTimeout = 10 * time.Second
	// bindAttempts bounds retries when the free port we picked is taken before postgres binds it.
	bindAttempts = 3
	// logTailLines is how much of the server log an error quotes.
	logTailLines = 20
)

// DefaultSpareRoot is Options.SpareRoot's default.
const DefaultSpareRoot = "/var/lib/strata/clusters"

// Options configures a private cluster.
type Options struct {
	// Dir is the data directory. It is created and initialised (initdb) when missing or empty,
	// and reused when it already holds a cluster (PG_VERSION exists).
	Dir string
	// BinDir holds initdb, postgres and pg_isready; empty means FindBinDir.
	BinDir string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// LogFile receives the output of initdb and the server (appended). Empty means
	// <Dir>/postgres.log: the log then lives and dies with the cluster it describes, and nothing
	// is written outside the data directory.
	LogFile string
	// SpareRoot is where, as root, a fresh data directory that the server's user cannot reach
	// really lives: Dir becomes a symbolic link to a directory under it. Empty means
	// DefaultSpareRoot.
	SpareRoot string
	// Settings are extra server settings, passed as `-c name=value` (tests pass fsync=off).
	// fsync=off also makes initdb skip its fsyncs. listen_addresses, port and
	// unix_socket_directories are managed by Start and refused here.
	Settings map[string]string
	// Port, when not 0, is the port to listen on, so that a cluster started again keeps its
	// address (tests restart one under a running server); 0 picks a free port.
	Port int
}

// Server is a running private cluster, started by Start and stopped by Stop.
type Server struct {
	dir     string
	port    int
	logFile string
	logger  *slog.Logger
	proc    *os.Process
	done    chan struct{}
	waitErr error // set before done is closed
}

// Start initialises the cluster in opts.Dir if needed, starts postgres on a free port of
// 127.0.0.1 and returns once it accepts connections. ctx bounds the start only; the server runs
// until Stop is called or this process dies (the server then gets SIGINT and shuts down).
func Start(ctx context.Context, opts Options) (*Server, error) {
	r, logger, logFile, err := opts.prepare(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.initdbIfNeeded(ctx, logger, logFile, opts.Settings["fsync"] == "off"); err != nil {
		return nil, err
	}
	return r.run(ctx, logger, logFile, opts)
}

// StartStandby starts a hot standby of primary in opts.Dir: a fresh directory is first filled
// with a base backup of primary (pg_basebackup -R, which also writes the settings that make the
// copy follow primary by streaming replication); a directory that already holds a cluster is
// started as it is. The standby accepts read-only connections once it has replayed to a
// consistent state, which is when StartStandby returns.
//
// A primary made by Start can serve standbys as it is: initdb allows replication connections
// from 127.0.0.1 (trust), and the server's defaults (wal_level=replica, max_wal_senders=10)
// stream WAL; settings that turn those down (wal_level=minimal) make the base backup fail. The
// standby follows primary at the port primary has now: a primary started again on another port
// leaves it behind.
func StartStandby(ctx context.Context, primary *Server, opts Options) (*Server, error) {
	r, logger, logFile, err := opts.prepare(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.basebackupIfNeeded(ctx, logger, primary, logFile, opts.Settings["fsync"] == "off"); err != nil {
		return nil, err
	}
	settings := map[string]string{"hot_standby": "on"}
	for name, v := range opts.Settings {
		settings[name] = v
	}
	opts.Settings = settings
	return r.run(ctx, logger, logFile, opts)
}

// prepare checks opts and readies the data directory and the log file.
func (opts Options) prepare(ctx context.Context) (r runner, logger *slog.Logger, logFile string, err error) {
	if err := opts.validate(); err != nil {
		return r, nil, "", err
	}
	logger = opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	binDir, err := resolveBinDir(opts.BinDir)
	if err != nil {
		return r, nil, "", err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return r, nil, "", fmt.Errorf("data dir %s: %w", opts.Dir, err)
	}
	acct, err := pickAccount(dir)
	if err != nil {
		return r, nil, "", err
	}
	// The real path is what postgres gets, so the reachability check in prepareDir covers exactly the
	// directories the server will walk through.
	requested := dir
	spare := opts.SpareRoot
	if spare == "" {
		spare = DefaultSpareRoot
	}
	dir, err = prepareDir(dir, acct, spare)
	if err != nil {
		return r, nil, "", err
	}
	if dir != requested {
		logger.InfoContext(ctx, "data dir lives elsewhere", "dir", requested, "real_dir", dir,
			"why", "the postgres server's user cannot reach the requested directory")
	}
	logFile = opts.LogFile
	if logFile == "" {
		logFile = filepath.Join(dir, "postgres.log")
	} else if logFile, err = filepath.Abs(logFile); err != nil {
		return r, nil, "", fmt.Errorf("log file %s: %w", opts.LogFile, err)
	}
	return runner{binDir: binDir, dir: dir, acct: acct, env: childEnv(acct)}, logger, logFile, nil
}

// run starts postgres on the prepared directory, retrying when the free port picked is taken.
func (r runner) run(ctx context.Context, logger *slog.Logger, logFile string, opts Options) (*Server, error) {
	for attempt := 1; ; attempt++ {
		s, err := r.start(ctx, logger, logFile, opts.Settings, opts.Port)
		var bindErr *portTakenError
		if errors.As(err, &bindErr) && attempt < bindAttempts && opts.Port == 0 {
			logger.DebugContext(ctx, "port taken before postgres could bind it, retrying", "port", bindErr.port)
			continue
		}
		if err != nil {
			return nil, err
		}
		logger.InfoContext(ctx, "private postgres cluster ready",
			"dir", r.dir, "port", s.port, "url", s.URL(Superuser), "log_file", logFile)
		return s, nil
	}
}

func (o Options) validate() error {
	if o.Dir == "" {
		return errors.New("pgserver: Options.Dir is empty")
	}
	for name := range o.Settings {
		switch strings.ToLower(name) {
		case "listen_addresses", "port", "unix_socket_directories":
			return fmt.Errorf("pgserver: setting %s is managed by Start and cannot be overridden", name)
		}
		if name == "" || strings.ContainsAny(name, "= ") {
			return fmt.Errorf("pgserver: invalid setting name %q", name)
		}
	}
	return nil
}

// URL returns a connection URL for database on this server, as the superuser, without TLS.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on (127.0.0.1 only).
func (s *Server) Port() int { return s.port }

// Done returns a channel that is closed once the postgres process has exited, whether through
// Stop or not.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns how the postgres process exited: nil while it runs and after a clean exit,
// otherwise its exit error (an *exec.ExitError for a non-zero status).
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.waitErr
	default:
		return nil
	}
}

// Stop asks postgres for a fast shutdown (SIGINT: sessions are cut, the cluster is checkpointed)
// and waits for it to exit. If ctx ends first it escalates to an immediate shutdown (SIGQUIT: crash
// recovery at next start) and, should that stall, kills the postmaster; it then returns an error.
// Stop is safe to call more than once and from several goroutines; once the process has exited it
// returns nil.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-s.done:
		s.logger.InfoContext(ctx, "private postgres cluster stopped", "dir", s.dir, "port", s.port)
		return nil
	case <-ctx.Done():
	}
	// ctx has ended: log with a context that still carries its values.
	lctx := context.WithoutCancel(ctx)
	s.logger.WarnContext(lctx, "fast shutdown of private postgres cluster too slow, sending SIGQUIT", "dir", s.dir)
	if err := s.signal(syscall.SIGQUIT); err != nil {
		return err
	}
	t := time.NewTimer(quitGrace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.logger.WarnContext(lctx, "immediate shutdown of private postgres cluster stalled, killing it", "dir", s.dir)
		if err := s.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("kill postgres in %s: %w", s.dir, err)
		}
		<-s.done
	}
	return fmt.Errorf("stop postgres in %s: fast shutdown did not finish in time, escalated: %w", s.dir, context.Cause(ctx))
}

func (s *Server) signal(sig os.Signal) error {
	if err := s.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal postgres in %s with %v: %w", s.dir, sig, err)
	}
	return nil
}

// runner runs the binaries of one installation on one data directory, as acct when we are root.
type runner struct {
	binDir string
	dir    string
	acct   *account // nil: run as ourselves
	env    []string
}

func (r runner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.binDir, name), args...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	// Own process group: a Ctrl-C at the terminal reaches only us, and we decide how the
	// children stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r.acct != nil {
		cmd.SysProcAttr.Credential = r.acct.credential()
	}
	return cmd
}

// populated reports whether the data directory holds a cluster already.
func (r runner) populated() (bool, error) {
	_, err := os.Stat(filepath.Join(r.dir, "PG_VERSION"))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("data dir %s: %w", r.dir, err)
}

func (r runner) initdbIfNeeded(ctx context.Context, logger *slog.Logger, logFile string, noSync bool) error {
	if done, err := r.populated(); err != nil || done {
		if done {
			logger.DebugContext(ctx, "reusing private postgres cluster", "dir", r.dir)
		}
		return err
	}
	logger.InfoContext(ctx, "initializing private postgres cluster", "dir", r.dir, "bin_dir", r.binDir)
	args := []string{"-D", r.dir, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--no-locale"}
	if noSync {
		args = append(args, "--no-sync")
	}
	cmd := r.command(ctx, "initdb", args...)
	// SIGINT lets initdb remove what it wrote, so a cancelled start leaves an empty directory
	// behind rather than a half-made cluster that would later pass for a real one.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = cleanupTimeout
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (initdb: %w)", context.Cause(ctx), err)
		}
		return fmt.Errorf("initdb %s: %w; its output ends with:\n%s", r.dir, err, lastLines(out.Bytes(), logTailLines))
	}
	// Only now may the log be written: it may live in the data directory, which initdb wants empty.
	return r.startLog(logFile, "initdb", out.Bytes())
}

// startLog begins the server's log file with what the command that made the data directory
// printed.
func (r runner) startLog(logFile, command string, output []byte) error {
	f, err := openLog(logFile, r.acct)
	if err != nil {
		return err
	}
	_, werr := f.Write(output)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write %s output to %s: %w", command, logFile, err)
	}
	return nil
}

// basebackupIfNeeded fills an empty data directory with a base backup of primary, set up to
// follow it (-R writes primary_conninfo and standby.signal).
func (r runner) basebackupIfNeeded(ctx context.Context, logger *slog.Logger, primary *Server, logFile string, noSync bool) error {
	if done, err := r.populated(); err != nil || done {
		if done {
			logger.DebugContext(ctx, "reusing private postgres standby", "dir", r.dir)
		}
		return err
	}
	logger.InfoContext(ctx, "copying primary into a standby", "dir", r.dir, "primary_port", primary.port)
	// initdb would make the directory private; pg_basebackup keeps what it finds, and postgres
	// refuses a data directory that others may enter.
	if err := os.Chmod(r.dir, 0o700); err != nil { //nolint:gosec // a directory: its owner must enter it
		return fmt.Errorf("data dir %s: %w", r.dir, err)
	}
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", Superuser,
		"-D", r.dir, "-R", "-X", "stream", "-c", "fast", "-w"}
	if noSync {
		args = append(args, "--no-sync")
	}
	cmd := r.command(ctx, "pg_basebackup", args...)
	cmd.WaitDelay = cleanupTimeout
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (pg_basebackup: %w)", context.Cause(ctx), err)
		}
		// A half-made copy must not pass for a standby at the next start.
		_ = os.Remove(filepath.Join(r.dir, "PG_VERSION"))
		return fmt.Errorf("pg_basebackup of the primary on port %d into %s: %w; its output ends with:\n%s",
			primary.port, r.dir, err, lastLines(out.Bytes(), logTailLines))
	}
	// The copy holds the primary's own log when that lives in its data directory: this server's
	// log starts afresh.
	if logFile == filepath.Join(r.dir, "postgres.log") {
		if err := os.Remove(logFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log file %s: %w", logFile, err)
		}
	}
	return r.startLog(logFile, "pg_basebackup", out.Bytes())
}

// portTakenError means postgres could not bind the port we picked for it.
type portTakenError struct {
	port int
	err  error
}

func (e *portTakenError) Error() string { return e.err.Error() }
func (e *portTakenError) Unwrap() error { return e.err }

// start runs postgres on a fresh free port and waits until it accepts connections.
func (r runner) start(ctx context.Context, logger *slog.Logger, logFile string, settings map[string]string, port int) (*Server, error) {
	if port == 0 {
		var err error
		if port, err = freePort(ctx); err != nil {
			return nil, err
		}
	}
	args := []string{
		"-D", r.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		// TCP only: no socket directory has to exist and be writable by the server's user.
		"-c", "unix_socket_directories=",
	}
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "-c", name+"="+settings[name])
	}

	f, err := openLog(logFile, r.acct)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("log file %s: %w", logFile, err)
	}
	logStart := st.Size() // errors quote this run's lines only

	// Not CommandContext: the server outlives the ctx of Start.
	cmd := r.command(context.Background(), "postgres", args...)
	cmd.Stdout = f
	cmd.Stderr = f
	// If this process dies, postgres gets SIGINT (fast shutdown) rather than running on as an
	// orphan holding the data directory.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT

	s := &Server{dir: r.dir, port: port, logFile: logFile, logger: logger, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits, not the process. Go
		// ends a thread only when a goroutine locked to it exits; keeping this goroutine locked
		// from Start until Wait returns keeps the forking thread alive exactly as long as the
		// server, and no other goroutine can take the thread and end it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		s.proc = cmd.Process
		started <- nil
		s.waitErr = cmd.Wait()
		logger.Debug("postgres process exited", "dir", r.dir, "port", port, "err", s.waitErr)
		close(s.done)
	}()
	err = <-started
	// The child holds its own copy of the descriptor.
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close log file %s: %w", logFile, cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("start postgres in %s: %w", r.dir, err)
	}
	logger.DebugContext(ctx, "postgres started, waiting until ready", "dir", r.dir, "port", port, "pid", s.proc.Pid)

	if err := r.waitReady(ctx, s, logStart); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		return nil, errors.Join(err, s.Stop(stopCtx))
	}
	return s, nil
}

// waitReady polls pg_isready until the server accepts connections, exits, or ctx ends.
func (r runner) waitReady(ctx context.Context, s *Server, logStart int64) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.done:
			tail := logTail(s.logFile, logStart)
			err := fmt.Errorf("postgres in %s exited before accepting connections (%w); %s ends with:\n%s",
				r.dir, errOrExited(s.waitErr), s.logFile, tail)
			if strings.Contains(tail, "Address already in use") {
				return &portTakenError{port: s.port, err: err}
			}
			return err
		default:
		}
		cmd := r.command(ctx, "pg_isready",
			"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", Superuser, "-d", "postgres", "-t", "1")
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("wait for postgres in %s on port %d: %w", r.dir, s.port, context.Cause(ctx))
		case errors.As(err, &exitErr) && (exitErr.ExitCode() == 1 || exitErr.ExitCode() == 2):
			// 1: rejecting connections (still starting); 2: no answer yet.
		default:
			return fmt.Errorf("pg_isready: %w: %s", err, bytes.TrimSpace(out))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for postgres in %s on port %d: %w", r.dir, s.port, context.Cause(ctx))
		case <-ticker.C:
		}
	}
}

func errOrExited(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process may take it before
// postgres binds it; Start retries then.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// openLog opens the log for appending, creating it (and its directory) when missing. A log we
// create as root is handed to the server's user, so the cluster stays usable without root.
func openLog(path string, acct *account) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // the server's user must reach it when we run as root
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Someone else's file (say /dev/stderr) is written to, never chowned.
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("log file %s: %w", path, err)
		}
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	if acct != nil {
		if err := f.Chown(int(acct.uid), int(acct.gid)); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("log file %s: %w", path, err)
		}
	}
	return f, nil
}

// logTail returns the last lines written to path at or after offset.
func logTail(path string, offset int64) string {
	const maxRead = 64 << 10
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	offset = max(offset, st.Size()-maxRead)
	b, err := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return lastLines(b, logTailLines)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
