package pgsql

import "github.com/jackc/pgx/v5"

// Statements of app.sql.
var (
	// AppKeepalives sets the session's TCP keepalives, so that the server notices a vanished
	// client within about half a minute.
	AppKeepalives = get("AppKeepalives")
	// AppIsolation reads the session's default transaction isolation level.
	AppIsolation = get("AppIsolation")
	// AppNotify sends a notification on the channel $1, for the session check.
	AppNotify = get("AppNotify")
)

// AppListen listens on the notification channel named channel, quoted as an identifier.
func AppListen(channel string) string {
	return "LISTEN " + pgx.Identifier{channel}.Sanitize()
}
