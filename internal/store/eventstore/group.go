package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Group commit: appends that arrive while another batch is being written wait in a queue; a
// writer takes everything queued (within the configured events and bytes) and writes it in one
// transaction, in one round trip, with one commit, then answers each caller. There is no timer:
// a writer starts the moment the first append arrives and takes the next batch the moment its
// commit returns, so a lone client waits for its own transaction only. An append that finds
// the queue empty and no writer running is written by its caller, alone, with no goroutine in
// between; writers are goroutines started when appends queue and gone when the queue is
// empty, and the store owns none between bursts.
//
// Why each guarantee of a lone Append still holds:
//   - Order. The batch first takes the advisory lock of every stream it touches, in byte order
//     of the stream ids (as AppendMulti does, so the two cannot deadlock), and only then writes.
//     A transaction gets its id at its first write, so, as for a lone append, an append that
//     waited for another's lock gets the younger transaction id, and the global order keeps
//     each stream's versions in order. Within the batch, positions are drawn in arrival order.
//   - Expected versions. The write statements run after the locks are held, each with a fresh
//     snapshot (READ COMMITTED), so each sees its streams' committed versions. Appends to one
//     stream in one batch go to successive statements ("waves"), so the second is checked
//     against the first's result.
//   - One append's failure is its own. A version mismatch or event ids already stored make the
//     statement skip that append (a status per append), never fail. Any error of the batch's
//     statements (a value PostgreSQL refuses, a duplicate id racing another transaction, a
//     deadlock) rolls the batch back, and then each of its appends runs alone, as if grouping
//     were off, and gets its own answer.
//   - Idempotency. An append whose event ids are already stored, also by an earlier wave of
//     the same batch, is answered after the commit as a lone append is (repeated).
//   - A failure of the whole transaction (the connection lost, the server stopping) fails
//     every append in it with that error, which IsUnavailable recognises as retryable.
//   - Nothing is answered before the commit that holds it returns.

// DefaultGroupMaxEvents and DefaultGroupMaxBytes bound one group commit unless configured.
const (
	DefaultGroupMaxEvents = 2000
	DefaultGroupMaxBytes  = 8 << 20
	DefaultGroupWriters   = 2
)

// groupCommit is the queue and the writers' count.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*pending
	writers int // running
	// batches and appends count what went through the queue, for GroupStats.
	batches, appends int64
}

// GroupQueue reports how many appends wait for a group commit and how many writers run.
func (s *Store) GroupQueue() (queued, writers int) {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue), s.group.writers
}

// GroupStats reports how many group commits ran and how many appends they carried (appends
// alone in the queue count as batches of one).
func (s *Store) GroupStats() (batches, appends int64) {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return s.group.batches, s.group.appends
}

// pending is one queued append and, once written, its answer: an Append (one part) or an
// AppendMulti (a part per stream, all written or none).
type pending struct {
	ctx     context.Context // the caller's
	parts   []StreamAppend  // the caller's parts; Events are not used once prepared
	inputs  []appendInput   // the prepared events of each part (none for a check-only part)
	multi   bool
	cond    *Condition // a conditional append: in a wave after the batch's plain ones
	events  int
	bytes   int
	results []AppendResult
	err     error
	done    chan struct{}
}

// appendGrouped queues an Append for the next group commit and waits for its answer.
func (s *Store) appendGrouped(ctx context.Context, streamID string, expected ExpectedVersion, in appendInput) (AppendResult, error) {
	results, err := s.queueAndWait(ctx, []StreamAppend{{StreamID: streamID, Expected: expected}}, []appendInput{in}, false, nil)
	if err != nil {
		return AppendResult{}, err
	}
	return results[0], nil
}

// queueAndWait queues an append and waits for its answer; when nothing is queued and no writer
// runs, the caller writes its append itself, alone. A caller that gives up (ctx) gets
// ctx's error: at once while it waits, as soon as its statement is cancelled when it writes its
// own. Its append is dropped if it is still queued; if it is being written alone, or every
// append of its batch was given up, the batch's database work is cancelled; otherwise it is
// written with the others (a retry with the same ids is safe, as after a lone append cancelled
// mid-statement).
func (s *Store) queueAndWait(ctx context.Context, parts []StreamAppend, inputs []appendInput, multi bool, cond *Condition) ([]AppendResult, error) {
	p := &pending{ctx: ctx, parts: parts, inputs: inputs, multi: multi, cond: cond, done: make(chan struct{})}
	for _, in := range inputs {
		p.events += len(in.ids)
		for i := range in.data {
			p.bytes += len(in.data[i]) + len(in.metadata[i]) + len(in.types[i])
		}
	}
	g := &s.group
	g.mu.Lock()
	if len(g.queue) == 0 && g.writers == 0 && s.opts.GroupWriters > 0 {
		// Nothing is being written or waits: the caller is the writer, for its own append
		// alone, as a writer would take it. A lone client so pays no hand-over to another
		// goroutine and back (a third of an append's server time at one client went to the
		// scheduler's wake-ups). Under load a writer is busy, and appends queue for batches.
		g.writers++
		g.batches++
		g.appends++
		g.mu.Unlock()
		s.alone(ctx, p)
		s.writerDone()
		if p.err != nil && ctx.Err() != nil {
			return nil, ctx.Err() // as a caller that gives up while it waits
		}
		return p.results, p.err
	}
	g.queue = append(g.queue, p)
	if g.writers < s.opts.GroupWriters {
		g.writers++
		go s.writeGroups()
	}
	g.mu.Unlock()
	select {
	case <-p.done:
		return p.results, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writerDone gives back the writer's place a caller took to write its own append: appends
// that queued meanwhile, when every place was taken, get a writer of their own.
func (s *Store) writerDone() {
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) > 0 {
		go s.writeGroups() // keeps the place
		return
	}
	g.writers--
}

// alone writes p in a transaction of its own, as it would be without grouping.
func (s *Store) alone(ctx context.Context, p *pending) {
	if p.cond != nil {
		p.results, p.err = s.conditionalAlone(ctx, p)
		return
	}
	if p.multi {
		p.results, p.err = s.appendMultiTx(ctx, p.parts, p.inputs, nil)
		return
	}
	part := p.parts[0]
	res, err := s.appendStream(ctx, part.StreamID, part.Expected, p.inputs[0])
	p.results, p.err = []AppendResult{res}, err
	if err != nil {
		p.results = nil
	}
}

// writeGroups writes batches until the queue is empty.
func (s *Store) writeGroups() {
	for {
		batch := s.takeBatch()
		if batch == nil {
			return
		}
		s.writeBatch(batch)
	}
}

// takeBatch takes the appends at the head of the queue, within the bounds (always at least
// one), or returns nil and counts this writer out when the queue is empty.
func (s *Store) takeBatch() []*pending {
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.writers--
		return nil
	}
	// Appends whose callers gave up while they waited are dropped: nobody waits for them.
	live := g.queue[:0]
	for _, p := range g.queue {
		if p.ctx.Err() != nil {
			close(p.done)
			continue
		}
		live = append(live, p)
	}
	clear(g.queue[len(live):])
	g.queue = live
	if len(g.queue) == 0 {
		g.writers--
		return nil
	}
	n, events, bytes := 0, 0, 0
	for _, p := range g.queue {
		if n > 0 && (events+p.events > s.opts.GroupMaxEvents || bytes+p.bytes > s.opts.GroupMaxBytes) {
			break
		}
		n++
		events += p.events
		bytes += p.bytes
	}
	g.batches++
	g.appends += int64(n)
	batch := make([]*pending, n)
	copy(batch, g.queue)
	rest := copy(g.queue, g.queue[n:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
	return batch
}

// groupTimeout bounds one batch's transaction; the callers' own deadlines bound their waits.
const groupTimeout = time.Minute

// writeBatch writes one batch and answers every append in it.
func (s *Store) writeBatch(batch []*pending) {
	if len(batch) == 1 {
		// Alone in the queue: the append's own transaction (one statement for an Append) is the
		// cheapest way to write it, and its caller's deadline reaches PostgreSQL as it does
		// without grouping.
		p := batch[0]
		s.alone(p.ctx, p)
		close(p.done)
		return
	}
	// The batch's work is cancelled when every caller in it has given up, and bounded anyway.
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	ctx, span := s.startGroup(ctx, batch)
	var spanErr error
	defer func() { endSpan(span, spanErr) }()
	var waiting atomic.Int32
	waiting.Store(int32(len(batch))) //nolint:gosec // at most GroupMaxEvents
	for _, p := range batch {
		stop := context.AfterFunc(p.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	// Conditional appends go last, so that each check sees the batch's other writes (its own
	// transaction's) as well as every commit before the batch's locks.
	var plain, conds []*pending
	for _, p := range batch {
		if p.cond != nil {
			conds = append(conds, p)
		} else {
			plain = append(plain, p)
		}
	}
	waves := append(splitWaves(plain), splitConditionalWaves(conds)...)
	rows, err := s.runBatch(ctx, batch, waves)
	spanErr = err
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && !IsUnavailable(err):
		// A statement failed, so the whole batch rolled back: each append runs alone and gets
		// its own answer (a refused value, a duplicate id, ...).
		for _, p := range batch {
			s.alone(p.ctx, p)
			close(p.done)
		}
		return
	case err != nil:
		// Anything else, the connection or the server going away among it (a terminated backend
		// is a PgError too), is the same for the whole batch, and retrying each is safe.
		for _, p := range batch {
			p.err = fmt.Errorf("append to %s: %w", p.parts[0].StreamID, err)
			close(p.done)
		}
		return
	}
	var wrote []string
	for w, wave := range waves {
		row := 0
		for _, p := range wave {
			if s.answer(p, rows[w][row:row+len(p.parts)]) {
				wrote = append(wrote, streamIDs(p.parts)...)
			}
			row += len(p.parts)
		}
	}
	if len(wrote) > 0 {
		s.appended(wrote...)
	}
	for _, p := range batch {
		close(p.done)
	}
}

// answer turns the rows of p's parts into its answer, as its own transaction would have
// answered; it reports whether p wrote events.
func (s *Store) answer(p *pending, rows []waveRow) bool {
	var conflict *WrongExpectedVersionError
	var failed *ConditionFailedError
	dup := false
	for i, r := range rows {
		switch r.status {
		case "dup":
			dup = true
		case "condition":
			if r.blockedTx != nil && r.blockedSeq != nil {
				failed = &ConditionFailedError{Position: Position{tx: *r.blockedTx, seq: *r.blockedSeq}}
			}
		case "conflict":
			// Of several, the one of the first stream in id order: the one a transaction of its
			// own, taking its locks in that order, would have met first.
			if part := p.parts[i]; conflict == nil || part.StreamID < conflict.StreamID {
				conflict = &WrongExpectedVersionError{StreamID: part.StreamID, Expected: part.Expected.version, Actual: r.current}
			}
		}
	}
	if !dup && failed != nil {
		p.err = failed
		return false
	}
	if !dup && conflict == nil {
		results := make([]AppendResult, len(p.parts))
		for i, r := range rows {
			if len(p.inputs[i].ids) == 0 { // a check-only part of an AppendMulti
				results[i] = AppendResult{StreamID: p.parts[i].StreamID, NextExpectedVersion: r.current}
				continue
			}
			res, err := r.result(p.parts[i].StreamID, p.inputs[i])
			if err != nil {
				p.err = fmt.Errorf("append to %s: %w", p.parts[i].StreamID, err)
				return false
			}
			results[i] = res
		}
		p.results = results
		return true
	}
	if dup {
		conflict = nil // stored ids: whether the call repeats an earlier one decides
	}
	var cause error
	if conflict != nil {
		cause = conflict
	}
	if p.multi {
		p.results, p.err = s.repeatedMulti(p.ctx, p.parts, p.inputs, cause)
		return false
	}
	part := p.parts[0]
	res, err := s.repeated(p.ctx, part.StreamID, part.Expected, p.inputs[0], cause)
	if err == nil {
		p.results = []AppendResult{res}
	}
	p.err = err
	return false
}

// splitWaves puts the appends of a batch into waves in which each stream appears once, keeping
// arrival order: an append goes to the wave after the latest one holding any of its streams
// (all parts of an AppendMulti go to one wave, whose statement writes them together).
func splitWaves(batch []*pending) [][]*pending {
	var waves [][]*pending
	next := map[string]int{} // the wave a stream's next append goes to
	for _, p := range batch {
		w := 0
		for _, part := range p.parts {
			w = max(w, next[part.StreamID])
		}
		if w == len(waves) {
			waves = append(waves, nil)
		}
		waves[w] = append(waves[w], p)
		for _, part := range p.parts {
			next[part.StreamID] = w + 1
		}
	}
	return waves
}

// splitConditionalWaves puts conditional appends into waves as splitWaves does, and besides
// starts a new wave for an append whose condition matches an event of an append before it in
// the wave: a wave's checks do not see the wave's own writes, so such an append waits for the
// next statement, where its check sees them, as it would had they been written one by one.
func splitConditionalWaves(conds []*pending) [][]*pending {
	var waves [][]*pending
	var streams map[string]bool // of the last wave
	for _, p := range conds {
		fits := len(waves) > 0
		for _, part := range p.parts {
			fits = fits && !streams[part.StreamID]
		}
		if fits {
			for _, q := range waves[len(waves)-1] {
				if p.cond.FailIfEventsMatch.matchesInput(q.inputs) {
					fits = false
					break
				}
			}
		}
		if !fits {
			waves = append(waves, nil)
			streams = map[string]bool{}
		}
		waves[len(waves)-1] = append(waves[len(waves)-1], p)
		for _, part := range p.parts {
			streams[part.StreamID] = true
		}
	}
	return waves
}

// waveRow is one part's row of a wave's answer: its status, the stream's version before it,
// and what it wrote.
type waveRow struct {
	status  string
	current int64
	storedRow
	// blockedTx and blockedSeq are the position of the event that failed a conditional
	// append's condition (status condition).
	blockedTx  *uint64
	blockedSeq *int64
}

// runBatch writes a batch in one transaction and one round trip: BEGIN, the locks, a statement
// per wave, COMMIT. It returns each wave's rows once the commit has returned.
func (s *Store) runBatch(ctx context.Context, batch []*pending, waves [][]*pending) ([][]waveRow, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()

	var streams []string
	for _, p := range batch {
		streams = append(streams, streamIDs(p.parts)...)
	}
	var exclusive []string
	var afterTx []string
	var afterSeq []int64
	all := false
	for _, p := range batch {
		if p.cond == nil {
			continue
		}
		if !p.cond.After.IsZero() {
			afterTx = append(afterTx, p.cond.After.txArg())
			afterSeq = append(afterSeq, p.cond.After.seq)
		}
		keys, everything := p.cond.FailIfEventsMatch.lockKeys()
		exclusive = append(exclusive, keys...)
		all = all || everything
	}
	b := &pgx.Batch{}
	b.Queue(pgsql.EventstoreGroupBegin)
	if len(afterTx) > 0 {
		b.Queue(pgsql.EventstoreConditionSettled, afterTx, afterSeq)
	}
	b.Queue(pgsql.EventstoreGroupLock, streams, batchKeys(batch), exclusive)
	if all {
		b.Queue(pgsql.EventstoreLockAllAppends)
	}
	before := b.Len() - 1 // after BEGIN: the checks and the locks
	for _, wave := range waves {
		if wave[0].cond != nil {
			stmt := pgsql.EventstoreGroupWaveIfTagged
			for _, p := range wave {
				for _, it := range p.cond.FailIfEventsMatch.Items {
					if len(it.Tags) == 0 {
						stmt = pgsql.EventstoreGroupWaveIf
					}
				}
			}
			b.Queue(stmt, append(waveArgs(wave), conditionArgs(wave)...)...)
			continue
		}
		b.Queue(pgsql.EventstoreGroupWave, waveArgs(wave)...)
	}
	b.Queue(pgsql.EventstoreGroupCommit)
	results := conn.SendBatch(ctx, b)
	rows, err := readBatch(results, before, waves)
	if closeErr := results.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		// A failed statement leaves the transaction aborted; end it before the connection goes
		// back to the pool (a lost connection is discarded by the pool anyway).
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(ctx, pgsql.EventstoreGroupRollback)
		}
		return nil, err
	}
	return rows, nil
}

// readBatch reads the results of runBatch's statements in order.
func readBatch(results pgx.BatchResults, before int, waves [][]*pending) ([][]waveRow, error) {
	for range 1 + before { // BEGIN, the checks and the locks
		if _, err := results.Exec(); err != nil {
			return nil, err
		}
	}
	out := make([][]waveRow, len(waves))
	for w, wave := range waves {
		rows, err := results.Query()
		if err != nil {
			return nil, err
		}
		conditional := wave[0].cond != nil
		out[w], err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (waveRow, error) {
			var row waveRow
			if conditional {
				err := r.Scan(&row.status, &row.current, &row.first, &row.tx, &row.positions, &row.at, &row.blockedTx, &row.blockedSeq)
				return row, err
			}
			err := r.Scan(&row.status, &row.current, &row.first, &row.tx, &row.positions, &row.at)
			return row, err
		})
		if err != nil {
			return nil, err
		}
		parts := 0
		for _, p := range wave {
			parts += len(p.parts)
		}
		if len(out[w]) != parts {
			return nil, fmt.Errorf("group commit: %d answers for %d parts", len(out[w]), parts)
		}
	}
	tag, err := results.Exec() // COMMIT
	if err != nil {
		return nil, err
	}
	if tag.String() != pgsql.EventstoreCommitTag {
		return nil, fmt.Errorf("group commit: the transaction ended with %s", tag)
	}
	return out, nil
}

// waveArgs are pgsql.EventstoreGroupWave's arguments for a wave.
func waveArgs(wave []*pending) []any {
	var (
		streams  []string
		expected []*int64
		counts   []int32
		group    []int32
		ids      []uuid.UUID
		partOf   []int32
		place    []int32
		types    []string
		versions []int32
		data     []json.RawMessage
		metadata []json.RawMessage
		lookup   []bool
		tags     []*string
	)
	for g, p := range wave {
		for i, part := range p.parts {
			in := p.inputs[i]
			streams = append(streams, part.StreamID)
			var exp *int64
			if v, ok := part.Expected.Value(); ok {
				exp = &v
			}
			expected = append(expected, exp)
			counts = append(counts, int32(len(in.ids))) //nolint:gosec // at most MaxEventsPerAppend
			group = append(group, int32(g+1))           //nolint:gosec // at most GroupMaxEvents
			row := int32(len(streams))                  //nolint:gosec // at most GroupMaxEvents
			for k := range in.ids {
				ids = append(ids, in.ids[k])
				partOf = append(partOf, row)
				place = append(place, int32(k+1)) //nolint:gosec // at most MaxEventsPerAppend
				types = append(types, in.types[k])
				versions = append(versions, in.schemaVersions[k])
				data = append(data, in.data[k])
				metadata = append(metadata, in.metadata[k])
				lookup = append(lookup, in.clientIDs)
				tags = append(tags, in.joinedTags[k])
			}
		}
	}
	return []any{streams, expected, counts, group, pgUUIDs(ids), partOf, place, types, versions, data, metadata, lookup, tags}
}

// conditionArgs are pgsql.EventstoreGroupWaveIf's arguments after the wave's: a row per item
// of each append's condition.
func conditionArgs(wave []*pending) []any {
	var (
		group     []int32
		types     []*string
		tags      []*string
		after     []string
		afterSeqs []int64
	)
	for g, p := range wave {
		for _, it := range p.cond.FailIfEventsMatch.Items {
			group = append(group, int32(g+1)) //nolint:gosec // at most GroupMaxEvents
			types = append(types, joined(it.Types))
			tags = append(tags, joined(it.Tags))
			after = append(after, p.cond.After.txArg())
			afterSeqs = append(afterSeqs, p.cond.After.seq)
		}
	}
	return []any{group, types, tags, after, afterSeqs}
}

// batchKeys are the consistency-boundary lock keys of every event of a batch, taken shared.
func batchKeys(batch []*pending) []string {
	var keys []string
	for _, p := range batch {
		for _, in := range p.inputs {
			keys = append(keys, in.keys...)
		}
	}
	return keys
}
