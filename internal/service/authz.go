package service

import "github.com/strata-es/strata/internal/service/auth"

// Operation kinds, as Authorize takes them.
const (
	Read  = "read"  // a query or a subscription
	Write = "write" // a mutation
)

// adminOperations are the operations only an admin may run, whatever their kind; every other
// write needs a writer and every read a reader.
var adminOperations = map[string]bool{ //nolint:gochecknoglobals // a constant table
	"rebuildProjection": true,
	"forgetUser":        true, // irreversible erasure of personal data
	// They hide history, and the scavenger then deletes it for good.
	"deleteStream":      true,
	"setStreamMetadata": true,
}

// Authorize is the role a request needs: kind is Read or Write, and operations are the names of
// what it runs (a GraphQL operation's root fields, a command's name). It is the one place where
// roles meet operations; a transport asks it and refuses what the principal's role does not
// reach.
func Authorize(kind string, operations []string) auth.Role {
	need := auth.RoleReader
	if kind == Write {
		need = auth.RoleWriter
	}
	for _, name := range operations {
		if adminOperations[name] {
			need = auth.RoleAdmin
		}
	}
	return need
}
