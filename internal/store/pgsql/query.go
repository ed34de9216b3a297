package pgsql

// Statements of query.sql.
var (
	// QueryOrderDays counts the orders created, paid, shipped and cancelled per UTC day of
	// [$1, $2), from order_stats, with the revenue paid: rows (day, kind, count, sum). $3 is the
	// origin of the days.
	QueryOrderDays = get("QueryOrderDays")
	// QueryOrderMedianTimeToShip is the median time from creation to shipment, in
	// microseconds, of the orders shipped in [$1, $2): rows (day, median) per UTC day from
	// origin $3, and one of day NULL for the whole range.
	QueryOrderMedianTimeToShip = get("QueryOrderMedianTimeToShip")
)
