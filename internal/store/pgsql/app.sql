-- The application's own checks of the database it opens (internal/app): the session settings
-- of a connection of its own, the pool's isolation level, the session check's notification.

-- name: AppKeepalives
-- Has the server probe a silent client after 10s, every 5s, and give up after 3 probes, for
-- the session that runs it: the session of a machine that vanished (its locks with it) then
-- ends within about half a minute rather than the system's two hours. Set after connecting
-- rather than as startup parameters, which poolers refuse.
SELECT set_config('tcp_keepalives_idle', '10', false),
	set_config('tcp_keepalives_interval', '5', false), set_config('tcp_keepalives_count', '3', false)

-- name: AppIsolation
-- The isolation level the session's transactions default to; Strata's appends need read
-- committed.
SELECT current_setting('default_transaction_isolation')

-- name: AppNotify
SELECT pg_notify($1, 'check')
