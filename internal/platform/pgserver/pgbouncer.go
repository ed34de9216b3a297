package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PgBouncerBinary is where Debian's pgbouncer package installs the pooler.
const PgBouncerBinary = "/usr/sbin/pgbouncer"

// BouncerOptions configures a PgBouncer started by StartPgBouncer.
type BouncerOptions struct {
	// Upstream is the PostgreSQL server every database is forwarded to: a URL whose host and
	// port are used (the client's database and user name are passed on).
	Upstream string
	// Dir holds the configuration, the log and the pid file; it must exist and be reachable by
	// the account the pooler runs as (as root: postgres, else nobody).
	Dir string
	// Users are the role names clients may connect as, with their passwords (PgBouncer wants
	// every user listed even with trust authentication; it logs in upstream with these).
	Users map[string]string
	// PoolMode is session, transaction or statement; empty means transaction.
	PoolMode string
	// Binary is the pgbouncer executable; empty means PgBouncerBinary.
	Binary string
}

// Bouncer is a running PgBouncer, for tests: it trusts every local client.
type Bouncer struct {
	port    int
	logFile string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartPgBouncer starts PgBouncer on a free port of 127.0.0.1, in front of opts.Upstream, and
// waits until it accepts connections. PgBouncer refuses to run as root, so as root it runs as
// the account PostgreSQL would (pickAccount).
func StartPgBouncer(ctx context.Context, opts BouncerOptions) (*Bouncer, error) {
	if opts.Binary == "" {
		opts.Binary = PgBouncerBinary
	}
	if opts.PoolMode == "" {
		opts.PoolMode = "transaction"
	}
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("pgbouncer: %w (install Debian's pgbouncer package: apt-get install pgbouncer)", err)
	}
	up, err := url.Parse(opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer upstream: %w", err)
	}
	upPort := up.Port()
	if upPort == "" {
		upPort = "5432"
	}
	acct, err := pickAccount(opts.Dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort(ctx)
	if err != nil {
		return nil, err
	}

	var users strings.Builder
	for name, password := range opts.Users {
		fmt.Fprintf(&users, "%q %q\n", name, password)
	}
	b := &Bouncer{port: port, logFile: filepath.Join(opts.Dir, "pgbouncer.log"), done: make(chan struct{})}
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
ignore_startup_parameters = default_transaction_isolation
max_client_conn = 500
default_pool_size = 20
logfile = %s
pidfile = %s
`, up.Hostname(), upPort, port, filepath.Join(opts.Dir, "userlist.txt"), opts.PoolMode, b.logFile, filepath.Join(opts.Dir, "pgbouncer.pid"))
	for name, content := range map[string]string{"userlist.txt": users.String(), "pgbouncer.ini": ini} {
		path := filepath.Join(opts.Dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
		if acct != nil {
			if err := os.Chown(path, int(acct.uid), int(acct.gid)); err != nil {
				return nil, fmt.Errorf("pgbouncer: %w", err)
			}
		}
	}
	if acct != nil {
		if err := os.Chown(opts.Dir, int(acct.uid), int(acct.gid)); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
	}

	// Not CommandContext: the pooler outlives the ctx of StartPgBouncer.
	b.cmd = exec.Command(opts.Binary, filepath.Join(opts.Dir, "pgbouncer.ini")) //nolint:gosec // the binary is the caller's choice
	b.cmd.Dir = opts.Dir
	b.cmd.Env = childEnv(acct)
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if acct != nil {
		b.cmd.SysProcAttr.Credential = acct.credential()
	}
	started := make(chan error, 1)
	go func() {
		// As for postgres: Pdeathsig follows the forking thread, which this goroutine keeps
		// alive as long as the child.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := b.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = b.cmd.Wait()
		close(b.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	if err := b.waitReady(ctx); err != nil {
		return nil, errors.Join(err, b.Stop())
	}
	return b, nil
}

func (b *Bouncer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)))
		if err == nil {
			return conn.Close()
		}
		select {
		case <-b.done:
			return fmt.Errorf("pgbouncer exited before accepting connections; %s ends with:\n%s", b.logFile, logTail(b.logFile, 0))
		case <-ctx.Done():
			return fmt.Errorf("wait for pgbouncer: %w", context.Cause(ctx))
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgbouncer did not accept connections on port %d within 15s; %s ends with:\n%s", b.port, b.logFile, logTail(b.logFile, 0))
		}
	}
}

// URL returns the connection string of database as user through the pooler.
func (b *Bouncer) URL(database, user, password string) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)), Path: "/" + database, RawQuery: "sslmode=disable"}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// Log returns the end of the pooler's log, for a test's failure message.
func (b *Bouncer) Log() string { return logTail(b.logFile, 0) }

// Stop stops the pooler (SIGTERM: immediate shutdown, clients are cut) and waits for it to exit.
func (b *Bouncer) Stop() error {
	select {
	case <-b.done:
		return nil
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop pgbouncer: %w", err)
	}
	select {
	case <-b.done:
		return nil
	case <-time.After(quitGrace):
	}
	if err := b.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill pgbouncer: %w", err)
	}
	<-b.done
	return nil
}
