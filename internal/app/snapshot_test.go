package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// Snapshots are an optimisation only: the same questions get the same answers with them, after
// deleting them all, and with a snapshot of an old shape lying around.
func TestSnapshotsChangeNoAnswer(t *testing.T) {
	url := dbtest.URL(t)
	srv := startServeOn(t, url, "--snapshot-every", "user=5")
	a := srv.addr
	var u userOut
	ok(t, gql(t, a, registerM, map[string]any{"n": "N0", "e": "n@example.com"}), "registerUser", &u)
	for i := 1; i <= 22; i++ {
		ok(t, gql(t, a, `mutation($id: ID!, $n: String!) { renameUser(id: $id, name: $n) { position } }`, map[string]any{"id": u.User.ID, "n": fmt.Sprintf("N%d", i)}), "renameUser", &struct{}{})
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var snaps int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM snapshots WHERE stream_id = $1`, "user-"+u.User.ID).Scan(&snaps); err != nil {
		t.Fatal(err)
	}
	if snaps < 3 {
		t.Fatalf("%d snapshots of a user with 23 events and --snapshot-every user=5, want several", snaps)
	}
	var stream struct {
		Events struct {
			Edges []struct {
				Node struct{ RecordedAt time.Time }
			}
		}
	}
	ok(t, gql(t, a, `query($s: String!) { stream(id: $s) { events(fromVersion: 10, first: 1) { edges { node { recordedAt } } } } }`, map[string]any{"s": "user-" + u.User.ID}), "stream", &stream)
	if len(stream.Events.Edges) != 1 {
		t.Fatalf("stream: %+v", stream)
	}
	tenth := stream.Events.Edges[0].Node

	answers := func() string {
		t.Helper()
		out := ""
		for _, v := range []int{1, 4, 5, 6, 12, 17, 23} {
			r := gql(t, a, `query($id: ID!, $v: Int) { user(id: $id, atVersion: $v) { name version } }`, map[string]any{"id": u.User.ID, "v": v})
			out += fmt.Sprintf("v%d=%s%v ", v, r.Data["user"], r.Errors)
		}
		r := gql(t, a, `query($id: ID!, $t: Time) { user(id: $id, asOf: $t) { name version } }`, map[string]any{"id": u.User.ID, "t": tenth.RecordedAt.Format(time.RFC3339Nano)})
		out += fmt.Sprintf("asOf=%s%v ", r.Data["user"], r.Errors)
		// A dry run loads the current state as a command does.
		r = gql(t, a, `mutation($id: ID!) { renameUser(id: $id, name: "Z", dryRun: true) { user { version } events { version } } }`, map[string]any{"id": u.User.ID})
		out += fmt.Sprintf("dry=%s%v", r.Data["renameUser"], r.Errors)
		return out
	}
	with := answers()
	if _, err := conn.Exec(t.Context(), `DELETE FROM snapshots`); err != nil {
		t.Fatal(err)
	}
	without := answers()
	if with != without {
		t.Errorf("answers with snapshots:\n%s\nwithout:\n%s", with, without)
	}
	if want := `v23={"name":"N22","version":23}`; !contains(with, want) || !contains(with, `v4={"name":"N3","version":4}`) || !contains(with, `asOf={"name":"N9","version":10}`) {
		t.Errorf("answers: %s", with)
	}
	// A snapshot of an older shape, even a wrong one, is ignored.
	if _, err := conn.Exec(t.Context(), `INSERT INTO snapshots (stream_id, version, shape, state) VALUES ($1, 20, 0, '{"Name": "WRONG", "Version": 20}')`, "user-"+u.User.ID); err != nil {
		t.Fatal(err)
	}
	if got := answers(); got != with {
		t.Errorf("with a snapshot of an old shape:\n%s\nwant:\n%s", got, with)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
