package pgserver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/strata-es/strata/internal/platform/pgserver"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// helperDirEnv makes the test binary act as a process that starts a cluster in the named
// directory and then waits to be killed (see TestServerStopsWhenOwnerDies).
const helperDirEnv = "PGSERVER_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		os.Exit(runHelper(dir))
	}
	goleak.VerifyTestMain(m)
}

func runHelper(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Settings: testSettings()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.Port())
	<-srv.Done() // never, unless the test fails: it kills this process first
	return 1
}

func testSettings() map[string]string {
	return map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
}

// unreachableParent returns an empty 0700 directory, removed after the test, that the postgres
// user cannot enter.
func unreachableParent(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// start starts a cluster in dir and stops it when the test ends.
func start(t *testing.T, dir string) *pgserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Logger: testLogger(t), Settings: testSettings()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv
}

func connect(t *testing.T, srv *pgserver.Server) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), srv.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to %s: %v", srv.URL("postgres"), err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}

func stop(t *testing.T, srv *pgserver.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestFindBinDirFindsServerBinaries(t *testing.T) {
	t.Parallel()
	dir, err := pgserver.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres", "pg_isready"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinDir() = %s, which lacks %s: %v", dir, name, err)
		}
	}
}

func TestSecondStartReusesData(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(dbtest.TempDir(t), "data") // missing: Start creates it
	const initdbBanner = "The files belonging to this database system"

	first := start(t, dir)
	conn := connect(t, first)
	if _, err := conn.Exec(t.Context(), `CREATE TABLE kept (note text); INSERT INTO kept VALUES ('survives restarts')`); err != nil {
		t.Fatal(err)
	}
	versionBefore, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	stop(t, first)

	second := start(t, dir)
	var note string
	if err := connect(t, second).QueryRow(t.Context(), `SELECT note FROM kept`).Scan(&note); err != nil {
		t.Fatalf("read back after restart: %v", err)
	}
	if note != "survives restarts" {
		t.Errorf("note = %q after restart", note)
	}
	versionAfter, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(versionBefore, versionAfter) || !versionBefore.ModTime().Equal(versionAfter.ModTime()) {
		t.Error("PG_VERSION was recreated: initdb ran again")
	}
	log, err := os.ReadFile(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), initdbBanner); n != 1 {
		t.Errorf("log shows initdb output %d times, want once", n)
	}
}

func TestStartWithoutBinariesExplainsTheFix(t *testing.T) {
	t.Parallel()
	_, err := pgserver.Start(t.Context(), pgserver.Options{
		Dir:    filepath.Join(dbtest.TempDir(t), "data"),
		BinDir: t.TempDir(),
	})
	if !errors.Is(err, pgserver.ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"apt-get install", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestStopIsIdempotentAndClosesDone(t *testing.T) {
	t.Parallel()
	srv := start(t, filepath.Join(dbtest.TempDir(t), "data"))
	select {
	case <-srv.Done():
		t.Fatal("Done closed while the server runs")
	default:
	}
	stop(t, srv)
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	stop(t, srv)
	if err := srv.Err(); err != nil {
		t.Errorf("Err() = %v after a fast shutdown", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, srv.URL("postgres")); err == nil {
		_ = conn.Close(ctx)
		t.Error("server still accepts connections after Stop")
	}
}

func TestStartOnBusyDirReportsPostgresError(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(dbtest.TempDir(t), "data")
	start(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Logger: testLogger(t), Settings: testSettings()})
	if err == nil {
		_ = srv.Stop(ctx)
		t.Fatal("second Start on a directory in use succeeded")
	}
	// postgres's own words, quoted from the log tail.
	if !strings.Contains(err.Error(), `lock file "postmaster.pid" already exists`) {
		t.Errorf("error does not quote postgres's complaint: %v", err)
	}
}

func TestStartRejectsManagedSettings(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"port", "listen_addresses", "Unix_Socket_Directories"} {
		_, err := pgserver.Start(t.Context(), pgserver.Options{
			Dir:      filepath.Join(dbtest.TempDir(t), "data"),
			Settings: map[string]string{name: "x"},
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Settings{%q} gave err %v, want a refusal naming it", name, err)
		}
	}
}

func TestStartAsRootRefusesUnreachableDirWithData(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another user")
	}
	parent := unreachableParent(t)
	dir := filepath.Join(parent, "data")
	if err := os.MkdirAll(filepath.Join(dir, "base"), 0o700); err != nil { // a cluster's worth of data
		t.Fatal(err)
	}
	_, err := pgserver.Start(t.Context(), pgserver.Options{Dir: dir, SpareRoot: dbtest.TempDir(t), Settings: testSettings()})
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want a permission error", err)
	}
	if !strings.Contains(err.Error(), "cannot enter "+parent) {
		t.Errorf("error does not name %s: %v", parent, err)
	}
}

// TestStartAsRootPlacesFreshUnreachableDirElsewhere is `make run` in a clone under /root: the
// data dir is linked to a directory the server's user can reach, and reused on the next start.
func TestStartAsRootPlacesFreshUnreachableDirElsewhere(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another user")
	}
	parent := unreachableParent(t)
	spare := dbtest.TempDir(t)
	dir := filepath.Join(parent, "data")
	opts := pgserver.Options{Dir: dir, SpareRoot: spare, Settings: testSettings(), Logger: testLogger(t)}

	first, err := pgserver.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, first).Exec(t.Context(), `CREATE TABLE kept (note text)`); err != nil {
		t.Fatal(err)
	}
	stop(t, first)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(real) != spare {
		t.Fatalf("%s resolves to %s, want a directory under %s", dir, real, spare)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatalf("no cluster behind the link: %v", err)
	}

	second, err := pgserver.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, second)
	if _, err := connect(t, second).Exec(t.Context(), `INSERT INTO kept VALUES ('again')`); err != nil {
		t.Fatalf("the second start did not find the first one's data: %v", err)
	}
}

// TestServerStopsWhenOwnerDies kills (SIGKILL, no cleanup) a process that started a cluster and
// checks that the cluster shuts down cleanly on its own.
func TestServerStopsWhenOwnerDies(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(dbtest.TempDir(t), "data")
	helper := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperDirEnv+"="+dir)
	helper.Stderr = tWriter{t}
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		_ = helper.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper did not report its server: %v", err)
	}
	if _, err := strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("helper printed %q, want a port", line)
	}
	pid := postmasterPID(t, dir)
	t.Cleanup(func() {
		if alive(pid) { // the test has failed; do not leave the server behind
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
	})

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	_, _ = io.Copy(io.Discard, out)

	deadline := time.Now().Add(time.Minute)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres (pid %d) still runs a minute after its owner died", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A fast shutdown removes the pid file; a crash would leave it.
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid still there (err %v): postgres did not shut down cleanly", err)
	}
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("postmaster.pid starts with %q", first)
	}
	return pid
}

// alive reports whether pid runs; a zombie awaiting its reaper counts as gone.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
