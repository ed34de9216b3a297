package eventstore

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err means the database could not be reached or went away under
// the call: a refused or failed connection, a connection cut mid-statement, or the server
// shutting down, starting up or out of connection slots. Such a failure is the server's, not
// the caller's, and trying again once PostgreSQL is back may succeed.
//
// It is also true when the connection died while a statement was in flight, so that whether it
// committed is unknown. Retrying is still right for an append whose events carry ids: a repeat
// of an append that did commit writes nothing and returns the first one's result.
//
// A cancelled call, a closed pool (this process is stopping) and any answer of a working
// server (a constraint, a bad value, a statement timeout) are not unavailability.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	// An answer of the server decides, even one wrapped in a connect error: a refused password
	// or a missing database will not mend by retrying.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableState(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // includes connect_timeout: the server did not answer in time
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return false // the request's own deadline, reported as a timeout
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed)
}

// unavailableState reports whether a SQLSTATE says the server cannot serve now, rather than that
// the statement was wrong.
func unavailableState(code string) bool {
	switch {
	case len(code) == 5 && code[:2] == "08": // connection exception
		return true
	case code == "57P01", // admin_shutdown: terminated by a fast shutdown or pg_terminate_backend
		code == "57P02", // crash_shutdown: another backend crashed, the server restarts
		code == "57P03", // cannot_connect_now: starting up or shutting down
		code == "53300": // too_many_connections
		return true
	}
	return false
}

// MayHaveCommitted reports whether an unavailability error left the outcome of a write unknown:
// the connection died after the statement was sent, so it may have committed. A refused or
// failed connection, and anything pgconn knows was never sent, did not write.
func MayHaveCommitted(err error) bool {
	if !IsUnavailable(err) {
		return false
	}
	var connectErr *pgconn.ConnectError
	return !errors.As(err, &connectErr) && !pgconn.SafeToRetry(err)
}
