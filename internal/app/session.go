package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/pgsql"
)

// sessionProbeTimeout bounds how long checkSession waits for its own notification: on a
// direct session it arrives in milliseconds.
const sessionProbeTimeout = 5 * time.Second

// errNoSession says the session URL shares its sessions with other clients.
var errNoSession = errors.New("a LISTEN on the session URL receives no notifications")

// checkSession makes sure the session URL (--listen-database-url, else --database-url) gives a
// session of its own, as LISTEN and the leadership locks need: a notification sent through the
// pool must reach a LISTEN made on it. Behind a pooler in transaction mode it does not (the
// pooler hands the server connection that listens to other clients between statements), and
// the server would miss other processes' appends until its poll, and hold locks on sessions it
// does not own; so it refuses to start. It also warns when the pool, presumably behind such a
// pooler, still uses named prepared statements.
func checkSession(ctx context.Context, db *database, logger *slog.Logger) error {
	if db.session != db.url {
		switch db.pool.Config().ConnConfig.DefaultQueryExecMode {
		case pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol:
		default:
			logger.WarnContext(ctx, "--listen-database-url differs from --database-url, but the pool prepares named statements: "+
				"behind PgBouncer in transaction mode (before 1.21, or without max_prepared_statements) add "+
				"default_query_exec_mode=exec to --database-url")
		}
	}
	conn, err := db.connect("strata session check")(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s (--listen-database-url): %w", config.DescribeDB(db.session), err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	channel := "strata_session_check_" + hex.EncodeToString(nonce)
	if _, err := conn.Exec(ctx, pgsql.AppListen(channel)); err != nil {
		return fmt.Errorf("session check: LISTEN on %s: %w", config.DescribeDB(db.session), err)
	}
	if _, err := db.pool.Exec(ctx, pgsql.AppNotify, channel); err != nil {
		return fmt.Errorf("session check: NOTIFY through the pool: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, sessionProbeTimeout)
	defer cancel()
	if _, err := conn.WaitForNotification(wctx); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: a notification sent through the pool did not reach a LISTEN on %s within %s. "+
				"That connection does not keep a session of its own: it goes through a pooler in transaction or statement mode "+
				"(PgBouncer's pool_mode = transaction, say). Set --listen-database-url (LISTEN_DATABASE_URL) to a direct "+
				"connection to PostgreSQL, or to a pooler database in session mode",
				errNoSession, config.DescribeDB(db.session), sessionProbeTimeout)
		}
		return fmt.Errorf("session check on %s: %w", config.DescribeDB(db.session), err)
	}
	return nil
}
