-- The live feed of subscriptions (internal/store/hub): the notification that wakes the feeds
-- of every server process. Its LISTEN names the channel, an identifier: HubListen in hub.go
-- builds it.

-- name: HubNotify
SELECT pg_notify($1, $2)
