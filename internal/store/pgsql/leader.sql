-- The leadership locks (internal/store/leader): a session-level advisory lock of class
-- advisory.Leader, key hashtext(name), held on a connection of its own; the session that holds
-- it leads the name.

-- name: LeaderTryLock
SELECT pg_try_advisory_lock({{Leader}}, hashtext($1))

-- name: LeaderUnlock
SELECT pg_advisory_unlock({{Leader}}, hashtext($1))

-- name: LeaderHolds
-- Checks that this very session still holds the lock: a connection that went through a pooler
-- in transaction mode would not, and must not be trusted with leadership. pid =
-- pg_backend_pid() keeps it to this session's locks, all in this session's database, though
-- pg_locks lists the whole cluster's.
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
	AND classid = {{Leader}} AND objid = hashtext($1)::oid AND objsubid = 2 AND granted)
