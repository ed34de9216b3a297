package pgsql

// Statements of replica.sql: the read replica's router, internal/store/replica.
var (
	// ReplicaInRecovery says whether the server is a standby replaying the primary's WAL
	// (pg_is_in_recovery()): false for a promoted replica, or a URL naming a primary.
	ReplicaInRecovery = get("ReplicaInRecovery")
)
