package config

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// DescribeDB names the server and database a connection string points at, without the password
// or any other secret it may carry, in URL or keyword/value form.
func DescribeDB(connString string) string {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return "(unparsable database url)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
