package benchcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/pgsql"
	"github.com/strata-es/strata/internal/testsupport/bench"
)

// graphqlResult is the line `strata bench graphql` prints: the append benchmark's, and, when the
// command started the servers itself, what each append cost (appendCosts); the costs are left
// out with --url.
type graphqlResult struct {
	bench.AppendResult
	appendCosts
}

// opCosts is what the operations of a run (the appends of `strata bench graphql`, the reads of
// `strata bench read`) cost the servers the command started and their PostgreSQL. A field is
// nil when it could not be measured. appendCosts and readCosts print it, each with its own names.
type opCosts struct {
	// PgXact is the change of pg_stat_database.xact_commit of the scratch database from the
	// start of the run until its statistics are flushed, less the idle rate (PgXactIdlePerSec)
	// over that time, per operation: what the operations made PostgreSQL commit, the background
	// work they set off included.
	PgXact *float64
	// PgXactGross is the same change without taking the idle rate off.
	PgXactGross *float64
	// PgXactIdlePerSec is the same counter's rate over an idle window just before the run: the
	// servers' background work (projector polls, leadership), to tell apart from the operations'.
	PgXactIdlePerSec *float64
	// ServerCPUUs is the CPU time (user + system) of the strata serve processes over the run, in
	// microseconds per operation.
	ServerCPUUs *float64
	// PostgresCPUUs is the CPU time of the PostgreSQL backends connected to the scratch database
	// both before and after the run, in microseconds per operation.
	PostgresCPUUs *float64
}

// appendCosts is opCosts per append, as `strata bench graphql` prints them.
type appendCosts struct {
	PgXactPerAppend        *float64 `json:"pg_xact_per_append,omitempty"`
	PgXactPerAppendGross   *float64 `json:"pg_xact_per_append_gross,omitempty"`
	PgXactIdlePerSec       *float64 `json:"pg_xact_idle_per_sec,omitempty"`
	ServerCPUUsPerAppend   *float64 `json:"server_cpu_us_per_append,omitempty"`
	PostgresCPUUsPerAppend *float64 `json:"postgres_cpu_us_per_append,omitempty"`
}

func (c opCosts) perAppend() appendCosts {
	return appendCosts{c.PgXact, c.PgXactGross, c.PgXactIdlePerSec, c.ServerCPUUs, c.PostgresCPUUs}
}

// readCosts is opCosts per read, as `strata bench read` prints them.
type readCosts struct {
	PgXactPerRead        *float64 `json:"pg_xact_per_read,omitempty"`
	PgXactPerReadGross   *float64 `json:"pg_xact_per_read_gross,omitempty"`
	PgXactIdlePerSec     *float64 `json:"pg_xact_idle_per_sec,omitempty"`
	ServerCPUUsPerRead   *float64 `json:"server_cpu_us_per_read,omitempty"`
	PostgresCPUUsPerRead *float64 `json:"postgres_cpu_us_per_read,omitempty"`
}

func (c opCosts) perRead() readCosts {
	return readCosts{c.PgXact, c.PgXactGross, c.PgXactIdlePerSec, c.ServerCPUUs, c.PostgresCPUUs}
}

// DefaultStatsWait is how long the cost measurement waits for PostgreSQL's statistics, after
// the servers start and after the run. A PostgreSQL 15 backend flushes its counters at most
// once a second, and one that goes idle less than a second after its last flush holds them for
// 10 s (PGSTAT_IDLE_INTERVAL): a shorter wait reads pg_stat_database before the run's operations
// are in it.
const DefaultStatsWait = 10500 * time.Millisecond

// costIdleWindow is the idle window measured just before the run.
const costIdleWindow = 3 * time.Second

// costProbe measures opCosts around a run: through conn, a session on the PostgreSQL server
// (on its maintenance database, so that its own reads are not counted in the scratch
// database's), and through /proc for the CPU times of serverPIDs and the backends.
type costProbe struct {
	conn       *pgx.Conn
	db         string        // the scratch database
	wait       time.Duration // for the statistics (DefaultStatsWait)
	serverPIDs []int
	notes      io.Writer // one line per cost that cannot be measured, and why

	idleXact, startXact int64
	idleStart, start    time.Time
	serverCPU           time.Duration         // the servers', at the start of the run
	serverErr           error                 // why the servers' CPU time cannot be read
	backendCPU          map[int]time.Duration // each backend's, at the start of the run
	backendErr          error                 // why the backends' CPU time cannot be read
}

// newCostProbe connects to the PostgreSQL server at serverURL to measure the costs of the
// operations on database db by the servers serverPIDs.
func newCostProbe(ctx context.Context, serverURL, db string, wait time.Duration, serverPIDs []int, notes io.Writer) (*costProbe, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("connect to %s to measure the costs: %w", config.DescribeDB(serverURL), err)
	}
	return &costProbe{conn: conn, db: db, wait: wait, serverPIDs: serverPIDs, notes: notes}, nil
}

func (p *costProbe) close() { _ = p.conn.Close(context.Background()) }

// beforeRun lets the freshly started servers settle, measures the idle rate of committed
// transactions over costIdleWindow, then reads the counters the run starts from.
func (p *costProbe) beforeRun(ctx context.Context) error {
	if err := sleep(ctx, p.wait); err != nil {
		return err
	}
	var err error
	if p.idleXact, err = p.xactCommits(ctx); err != nil {
		return err
	}
	p.idleStart = time.Now()
	if err := sleep(ctx, costIdleWindow); err != nil {
		return err
	}
	if p.startXact, err = p.xactCommits(ctx); err != nil {
		return err
	}
	p.start = time.Now()
	p.serverCPU, p.serverErr = p.serversCPU()
	var pids []int
	if pids, err = p.backends(ctx); err != nil {
		return err
	}
	p.backendCPU, p.backendErr = backendsCPU(pids)
	return nil
}

// afterRun reads the counters again once the run has done ops operations, and returns the costs
// per operation; it reads the CPU times at once and the transactions after p.wait. unit names
// the operation in the notes on costs left out ("append": server_cpu_us_per_append).
func (p *costProbe) afterRun(ctx context.Context, ops int64, unit string) (opCosts, error) {
	var c opCosts
	idleRate := float64(p.startXact-p.idleXact) / p.start.Sub(p.idleStart).Seconds()
	idle := round(idleRate, 2)
	c.PgXactIdlePerSec = &idle
	if ops <= 0 {
		return c, nil
	}
	perOp := func(d time.Duration) *float64 {
		v := round(float64(d.Microseconds())/float64(ops), 1)
		return &v
	}
	switch serverCPU, err := p.serversCPU(); {
	case p.serverErr != nil:
		fmt.Fprintf(p.notes, "bench: server_cpu_us_per_%s left out: %v\n", unit, p.serverErr)
	case err != nil:
		fmt.Fprintf(p.notes, "bench: server_cpu_us_per_%s left out: %v\n", unit, err)
	default:
		c.ServerCPUUs = perOp(serverCPU - p.serverCPU)
	}
	pids, err := p.backends(ctx)
	if err != nil {
		return c, err
	}
	switch after, err := backendsCPU(pids); {
	case p.backendErr != nil:
		fmt.Fprintf(p.notes, "bench: postgres_cpu_us_per_%s left out: %v\n", unit, p.backendErr)
	case err != nil:
		fmt.Fprintf(p.notes, "bench: postgres_cpu_us_per_%s left out: %v\n", unit, err)
	default:
		var cpu time.Duration
		for pid, t := range after {
			if t0, ok := p.backendCPU[pid]; ok { // present before and after the run
				cpu += t - t0
			}
		}
		c.PostgresCPUUs = perOp(cpu)
	}
	if err := sleep(ctx, p.wait); err != nil {
		return c, err
	}
	endXact, err := p.xactCommits(ctx)
	if err != nil {
		return c, err
	}
	gross := float64(endXact - p.startXact)
	background := idleRate * time.Since(p.start).Seconds()
	xact, grossPer := round((gross-background)/float64(ops), 3), round(gross/float64(ops), 3)
	c.PgXact, c.PgXactGross = &xact, &grossPer
	return c, nil
}

// xactCommits reads pg_stat_database.xact_commit of the scratch database, afresh: each statement
// is a transaction of its own, and the session's cached snapshot is dropped first.
func (p *costProbe) xactCommits(ctx context.Context) (int64, error) {
	if _, err := p.conn.Exec(ctx, pgsql.BenchClearStatsSnapshot); err != nil {
		return 0, fmt.Errorf("clear the statistics snapshot: %w", err)
	}
	var n int64
	if err := p.conn.QueryRow(ctx, pgsql.BenchXactCommits, p.db).Scan(&n); err != nil {
		return 0, fmt.Errorf("read the committed transactions of %s: %w", p.db, err)
	}
	return n, nil
}

// backends lists the process ids of the backends on the scratch database (this session's
// aside, should it be on it: benchmarking a database in place).
func (p *costProbe) backends(ctx context.Context) ([]int, error) {
	rows, err := p.conn.Query(ctx, pgsql.BenchBackends, p.db)
	if err != nil {
		return nil, fmt.Errorf("list the backends of %s: %w", p.db, err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("list the backends of %s: %w", p.db, err)
	}
	own := p.conn.PgConn().PID()
	out := make([]int, 0, len(pids))
	for _, pid := range pids {
		if uint32(pid) != own { //nolint:gosec // a process id, positive
			out = append(out, int(pid))
		}
	}
	return out, nil
}

// serversCPU sums the CPU time of the strata serve processes.
func (p *costProbe) serversCPU() (time.Duration, error) {
	var sum time.Duration
	for _, pid := range p.serverPIDs {
		_, cpu, err := processCPU(pid)
		if err != nil {
			return 0, fmt.Errorf("the server's CPU time: %w", err)
		}
		sum += cpu
	}
	return sum, nil
}

// backendsCPU reads the CPU time of each PostgreSQL backend pids names. It fails when one cannot
// be read, or is not a postgres process here: PostgreSQL runs on another machine (or in a
// container of its own), whose process ids mean nothing on this one.
func backendsCPU(pids []int) (map[int]time.Duration, error) {
	cpu := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		comm, t, err := processCPU(pid)
		if errors.Is(err, os.ErrNotExist) {
			continue // exited since it was listed; a backend present both times is counted
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the CPU time of PostgreSQL backend %d: %w", pid, err)
		}
		if comm != "postgres" {
			return nil, fmt.Errorf("backend %d is %q here, not postgres: is PostgreSQL on another machine?", pid, comm)
		}
		cpu[pid] = t
	}
	if len(pids) > 0 && len(cpu) == 0 {
		return nil, fmt.Errorf("none of PostgreSQL's backends %v is a process here: is PostgreSQL on another machine?", pids)
	}
	return cpu, nil
}

// userHZ is the Linux USER_HZ, the clock ticks per second in which /proc/<pid>/stat counts
// utime and stime: 100 on every Linux architecture (sysconf(_SC_CLK_TCK) is 100, whatever the
// kernel's own tick rate).
const userHZ = 100

// processCPU reads a process's command name and CPU time (user + system) from /proc/<pid>/stat.
func processCPU(pid int) (comm string, cpu time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat parses a /proc/<pid>/stat line: "pid (comm) state ppid ...", where comm may hold
// spaces and parentheses, so the fields are counted after the last ')'. utime and stime are
// fields 14 and 15 (proc(5)), in clock ticks of 1/userHZ s.
func parseProcStat(line string) (comm string, cpu time.Duration, err error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("/proc/<pid>/stat: no (comm) in %.80q", line)
	}
	fields := strings.Fields(line[end+1:]) // fields[0] is field 3, state
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return "", 0, fmt.Errorf("/proc/<pid>/stat: %d fields after the command name, want at least %d", len(fields), stime+1)
	}
	var ticks uint64
	for _, i := range []int{utime, stime} {
		n, err := strconv.ParseUint(fields[i], 10, 63)
		if err != nil {
			return "", 0, fmt.Errorf("/proc/<pid>/stat field %d: %w", i+3, err)
		}
		ticks += n
	}
	return line[open+1 : end], time.Duration(ticks) * time.Second / userHZ, nil //nolint:gosec // 63 bits
}

// sleep waits for d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// round rounds x to digits decimal places.
func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
