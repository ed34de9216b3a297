package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Severity: "FATAL", Code: code} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"terminated by a fast shutdown", pg("57P01"), true},
		{"another backend crashed", pg("57P02"), true},
		{"starting up or shutting down", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"cannot establish a connection", pg("08001"), true},
		{"too many connections", pg("53300"), true},
		{"wrapped server shutdown", fmt.Errorf("append to s-1: %w", pg("57P01")), true},
		{"unexpected EOF mid-statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"connection refused", fmt.Errorf("read horizon: %w", refused), true},
		{"closed connection", fmt.Errorf("read: %w", pgconn.ErrConnClosed), true},
		{"unique violation", pg("23505"), false},
		{"statement timeout", pg("57014"), false},
		{"serialization failure", pg("40001"), false},
		{"bad password", pg("28P01"), false},
		{"missing database", pg("3D000"), false},
		{"cancelled by the caller", fmt.Errorf("read: %w", context.Canceled), false},
		{"the request's deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), false},
		{"invalid input", &eventstore.ValidationError{Field: "events", Reason: "empty"}, false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventstore.IsUnavailable(tt.err); got != tt.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// The errors pgx really returns, from a real server and from none.
func TestIsUnavailableOnRealFailures(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)

	t.Run("nothing listens on the port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		_, err = pgconn.Connect(ctx, "postgres://postgres@"+addr+"/none?sslmode=disable&connect_timeout=5")
		if !eventstore.IsUnavailable(err) || eventstore.MayHaveCommitted(err) {
			t.Errorf("connecting to a closed port: IsUnavailable(%v) = false, or it may have committed", err)
		}
	})

	t.Run("the database does not exist", func(t *testing.T) {
		cfg, err := pgconn.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Database = "strata_no_such_database"
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err == nil {
			_ = conn.Close(ctx)
			t.Fatal("connected to a database that does not exist")
		}
		if eventstore.IsUnavailable(err) {
			t.Errorf("a missing database is a configuration error, not unavailability: %v", err)
		}
	})

	// The backend is terminated as a fast shutdown terminates it: once in the middle of a
	// statement, once between statements.
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	terminate := func(t *testing.T, pid uint32) {
		t.Helper()
		// With a timeout, it returns once the backend has exited.
		var gone bool
		if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&gone); err != nil || !gone {
			t.Fatalf("terminate backend %d: %v %v", pid, gone, err)
		}
	}
	sleeping := func(t *testing.T, pid uint32) bool {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND datname = current_database()
			AND state = 'active' AND query LIKE '%pg_sleep%'`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	t.Run("terminated mid-statement", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(ctx) }()
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, `SELECT pg_sleep(30)`)
			done <- err
		}()
		// Once the session shows the statement running, so the termination lands mid-statement.
		for deadline := time.Now().Add(20 * time.Second); !sleeping(t, conn.PgConn().PID()); {
			if time.Now().After(deadline) {
				t.Fatal("pg_sleep did not show as running within 20s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		terminate(t, conn.PgConn().PID())
		stmtErr := <-done
		if !eventstore.IsUnavailable(stmtErr) || !eventstore.MayHaveCommitted(stmtErr) {
			t.Errorf("a statement whose backend was terminated: IsUnavailable(%v) = false, or its outcome counts as known", stmtErr)
		}
	})
	t.Run("terminated between statements", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(ctx) }()
		terminate(t, conn.PgConn().PID())
		_, err = conn.Exec(ctx, `SELECT 1`)
		if !eventstore.IsUnavailable(err) {
			t.Errorf("a statement on a terminated connection: IsUnavailable(%v) = false", err)
		}
	})

	t.Run("this process closed its pool", func(t *testing.T) {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		pool.Close()
		_, err = pool.Exec(ctx, `SELECT 1`)
		if err == nil || eventstore.IsUnavailable(err) {
			t.Errorf("a closed pool is this process stopping, not the database away: %v", err)
		}
	})
}
