package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/runtime/aggregates"
	cmdhandler "github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// `strata projections rebuild` reads personal fields as a server does: given the master key the
// servers use, the rebuilt users table holds the names and addresses in the clear.
func TestProjectionsRebuildOpensPersonalFieldsWithTheMasterKey(t *testing.T) {
	url := dbtest.URL(t)
	pool := dbtest.PoolFor(t, url, 4)
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "master.key")
	hexKey := strings.Repeat("5a", 32)
	if err := os.WriteFile(keyFile, []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = 0x5a
	}
	store := eventstore.New(pool, eventstore.Options{Personal: cmdhandler.PersonalFields(aggregates.All()), MasterKey: key})
	u, err := cmdhandler.New(store, cmdhandler.Options{}).RegisterUser(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr syncBuffer
	args := []string{"projections", "rebuild", "users", "--personal-data-key-file", keyFile}
	if err := Run(ctx, args, &stdout, &stderr, envOf(map[string]string{"DATABASE_URL": url})); err != nil {
		t.Fatalf("strata %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var name, email string
	if err := pool.QueryRow(ctx, `SELECT name, email FROM users WHERE id = $1`, u.User.ID).Scan(&name, &email); err != nil {
		t.Fatalf("the rebuilt users table: %v; stderr:\n%s", err, stderr.String())
	}
	if name != "Ada" || email != "ada@example.com" {
		t.Errorf("rebuilt row: %q, %q; want Ada, ada@example.com", name, email)
	}
}
