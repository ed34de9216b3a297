package pgsql

// Statements of leader.sql.
var (
	// LeaderTryLock tries once to take the leadership of the name $1 for the session; true
	// when it did.
	LeaderTryLock = get("LeaderTryLock")
	// LeaderUnlock gives up the session's leadership of the name $1.
	LeaderUnlock = get("LeaderUnlock")
	// LeaderHolds reports whether this very session still holds the leadership of the name $1.
	LeaderHolds = get("LeaderHolds")
)
