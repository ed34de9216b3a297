-- The read replica (internal/store/replica): whether the database it reads is a standby.

-- name: ReplicaInRecovery
SELECT pg_is_in_recovery()
