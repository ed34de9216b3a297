-- The read side's own queries (internal/store/query): figures over the projections' tables.

-- name: QueryOrderDays
-- Counts, per UTC day, the orders created, paid, shipped and cancelled in [$1, $2), from the
-- order_stats read model, each counted on the day ($3 the origin of the days) of the event that
-- did it, with the sum of the amounts paid; each branch is a range scan of its index.
SELECT date_bin('1 day', x.at, $3) AS day, x.kind, count(*), coalesce(sum(x.amount), 0)::bigint
FROM (
	SELECT created_at AS at, 'created' AS kind, 0::bigint AS amount FROM order_stats WHERE created_at >= $1 AND created_at < $2
	UNION ALL SELECT paid_at, 'paid', amount_paid FROM order_stats WHERE paid_at >= $1 AND paid_at < $2
	UNION ALL SELECT shipped_at, 'shipped', 0 FROM order_stats WHERE shipped_at >= $1 AND shipped_at < $2
	UNION ALL SELECT cancelled_at, 'cancelled', 0 FROM order_stats WHERE cancelled_at >= $1 AND cancelled_at < $2
) x
GROUP BY 1, 2

-- name: QueryOrderMedianTimeToShip
-- The median time to ship, in microseconds, of the orders shipped in [$1, $2), per UTC day ($3
-- the origin of the days); grouping sets: the row of day NULL is the whole range's.
SELECT date_bin('1 day', shipped_at, $3) AS day,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM shipped_at - created_at) * 1000000)
FROM order_stats WHERE shipped_at >= $1 AND shipped_at < $2
GROUP BY GROUPING SETS ((date_bin('1 day', shipped_at, $3)), ())
