package pgsql

import "github.com/jackc/pgx/v5"

// Statements of hub.sql: the live feed of subscriptions, internal/store/hub.
var (
	// HubNotify announces appends on channel $1, with payload $2 (the sending process and the
	// categories appended: hub.go). The hub sends it outside every append transaction, one for
	// any number of appends within an interval.
	HubNotify = get("HubNotify")
)

// HubListen is the statement that makes a session listen on channel, quoted.
func HubListen(channel string) string {
	return "LISTEN " + pgx.Identifier{channel}.Sanitize()
}
