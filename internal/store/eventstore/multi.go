package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// StreamAppend is one stream's part of an AppendMulti call.
type StreamAppend struct {
	StreamID string
	Expected ExpectedVersion
	// Events to append. None makes the part a check: the stream must be at Expected when the
	// other parts commit, and nothing is written to it.
	Events []EventData
}

// AppendMulti appends to several streams in one transaction: every part commits, or none does.
// Each part is checked against its expected version as Append checks it, and a mismatch in any
// part writes nothing and returns that part's *WrongExpectedVersionError. A part without events
// only checks its stream's version and holds it until the commit; a part with Expected Any and
// no events is refused. Results come in the order of parts; a check-only part's result has the
// stream's version and no events.
//
// Aggregates use it to keep an invariant that spans streams, such as an order checking its
// customer's stream at the version it read.
// Repeating an AppendMulti that succeeded succeeds again without writing, when every part with
// events repeats its earlier append.
func (s *Store) AppendMulti(ctx context.Context, parts []StreamAppend) (results []AppendResult, err error) {
	ctx, span := s.startAppend(ctx, parts)
	defer func() { endAppend(span, results, err) }()
	if s.opts.Observer == nil {
		return s.appendMulti(ctx, parts)
	}
	start := time.Now()
	results, err = s.appendMulti(ctx, parts)
	s.opts.Observer.Appended(writtenAll(results), time.Since(start), err)
	return results, err
}

func (s *Store) appendMulti(ctx context.Context, parts []StreamAppend) ([]AppendResult, error) {
	return s.appendParts(ctx, parts, nil)
}

// appendParts is AppendMulti and, with a condition, AppendMultiIf: grouped or alone, and a
// deleted stream's refusal named.
func (s *Store) appendParts(ctx context.Context, parts []StreamAppend, cond *Condition) ([]AppendResult, error) {
	if cond != nil {
		if err := ValidateQuery("condition.failIfEventsMatch", cond.FailIfEventsMatch); err != nil {
			return nil, err
		}
	}
	inputs, err := s.prepareMulti(parts)
	if err != nil {
		return nil, err
	}
	var results []AppendResult
	switch {
	case s.opts.GroupCommit:
		results, err = s.queueAndWait(ctx, parts, inputs, true, cond)
	case cond != nil:
		results, err = s.conditionalAlone(ctx, &pending{ctx: ctx, parts: parts, inputs: inputs, multi: true, cond: cond})
	default:
		results, err = s.appendMultiTx(ctx, parts, inputs, nil)
	}
	if err != nil && ctx.Err() == nil {
		// A deleted stream refuses appends (lifecycle.go); AppendMulti does not recreate one.
		if deleted := s.deletedError(ctx, streamIDs(parts), err); deleted != nil {
			return nil, deleted
		}
	}
	return results, err
}

// prepareMulti validates a multi-stream append.
func (s *Store) prepareMulti(parts []StreamAppend) ([]appendInput, error) {
	if len(parts) == 0 {
		return nil, &ValidationError{Field: "streams", Reason: "an append needs at least one stream"}
	}
	inputs := make([]appendInput, len(parts))
	seenStream := make(map[string]int, len(parts))
	seenID := map[uuid.UUID]string{}
	total := 0
	for i, p := range parts {
		if j, dup := seenStream[p.StreamID]; dup {
			return nil, &ValidationError{Field: fmt.Sprintf("streams[%d].streamId", i), Reason: fmt.Sprintf("%s is also streams[%d]", p.StreamID, j)}
		}
		seenStream[p.StreamID] = i
		if len(p.Events) == 0 {
			if err := validateName("streamId", p.StreamID, MaxStreamIDLen); err != nil {
				return nil, atStream(i, err)
			}
			if v, ok := p.Expected.Value(); !ok || v < 0 {
				return nil, atStream(i, &ValidationError{Field: "expectedVersion", Reason: "a check without events needs an expected version of 0 or more"})
			}
			continue
		}
		in, err := s.prepare(p.StreamID, p.Expected, p.Events)
		if err != nil {
			return nil, atStream(i, err)
		}
		for _, id := range in.ids {
			if other, dup := seenID[id]; dup {
				return nil, atStream(i, &ValidationError{Field: "events.id", Reason: fmt.Sprintf("event id %s is also in stream %s", id, other)})
			}
			seenID[id] = p.StreamID
		}
		total += len(in.ids)
		inputs[i] = in
	}
	if total == 0 {
		return nil, &ValidationError{Field: "streams", Reason: "an append needs at least one event"}
	}
	if total > s.opts.MaxEventsPerAppend {
		return nil, &ValidationError{Field: "events", Reason: fmt.Sprintf("%d events in one append, the limit is %d", total, s.opts.MaxEventsPerAppend)}
	}
	for i, in := range inputs {
		if err := checkReserved(in); err != nil {
			return nil, atStream(i, err)
		}
	}
	return inputs, nil
}

// appendMultiTx writes a validated multi-stream append in a transaction of its own. last, when
// set, runs in that transaction after the appends: not before, since the transaction must take
// its id (at its first write) only once it holds the streams' locks.
func (s *Store) appendMultiTx(ctx context.Context, parts []StreamAppend, inputs []appendInput, last func(pgx.Tx) error) ([]AppendResult, error) {
	// Parts are written in stream id order, the order of the locks.
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return parts[order[a]].StreamID < parts[order[b]].StreamID })

	streams := streamIDs(parts)
	var keys []string
	for _, in := range inputs {
		keys = append(keys, in.keys...)
	}
	results := make([]AppendResult, len(parts))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Every lock before the first write: the transaction takes its id at its first write,
		// and a stream's next append must have a younger id than its last (docs/design.md, "Each
		// stream in order within the global order"); and in the order every append takes them,
		// streams then keys, so that no conditional append deadlocks with this one.
		if _, err := tx.Exec(ctx, pgsql.EventstoreLockStreams, streams); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, pgsql.EventstoreGroupKeys, keys, []string(nil)); err != nil {
			return err
		}
		for _, i := range order {
			p := parts[i]
			if len(p.Events) == 0 {
				var actual int64
				if err := tx.QueryRow(ctx, pgsql.EventstoreCheckStream, p.StreamID).Scan(&actual); err != nil {
					return fmt.Errorf("check %s: %w", p.StreamID, err)
				}
				if want, _ := p.Expected.Value(); actual != want {
					return &WrongExpectedVersionError{StreamID: p.StreamID, Expected: want, Actual: actual}
				}
				results[i] = AppendResult{StreamID: p.StreamID, NextExpectedVersion: actual}
				continue
			}
			res, err := s.insertInTx(ctx, tx, p.StreamID, p.Expected, inputs[i])
			if err != nil {
				return err
			}
			results[i] = res
		}
		if last != nil {
			return last(tx)
		}
		return nil
	})
	if err == nil {
		s.appended(streams...)
		return results, nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "event_ids_pkey":
			return s.repeatedMulti(ctx, parts, inputs, nil)
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "22":
			return nil, &ValidationError{Field: "events", Reason: pgErr.Message}
		}
	}
	var wrong *WrongExpectedVersionError
	if errors.As(err, &wrong) {
		return s.repeatedMulti(ctx, parts, inputs, err)
	}
	return nil, fmt.Errorf("append to %d streams: %w", len(parts), err)
}

// insertInTx is Append's statement inside a multi-stream transaction. Each statement of a READ
// COMMITTED transaction takes a new snapshot, so the retry for a stream created after the
// statement's snapshot works here as it does in Append.
func (s *Store) insertInTx(ctx context.Context, tx pgx.Tx, streamID string, expected ExpectedVersion, in appendInput) (AppendResult, error) {
	for attempt := 1; ; attempt++ {
		// A failed statement would abort the transaction; a savepoint keeps a lost race on
		// streams_pkey (the stream was created concurrently) recoverable.
		sp, err := tx.Begin(ctx)
		if err != nil {
			return AppendResult{}, err
		}
		res, found, err := s.insert(ctx, sp, streamID, expected, in)
		if err != nil {
			_ = sp.Rollback(ctx)
			return AppendResult{}, err
		}
		if found {
			if err := sp.Commit(ctx); err != nil {
				return AppendResult{}, err
			}
			return res, nil
		}
		if err := sp.Rollback(ctx); err != nil {
			return AppendResult{}, err
		}
		var actual int64
		if err := tx.QueryRow(ctx, pgsql.EventstoreStreamVersion, streamID).Scan(&actual); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s: read version after a conflict: %w", streamID, err)
		}
		if want, _ := expected.Value(); actual == want && attempt < 3 {
			continue
		}
		return AppendResult{}, &WrongExpectedVersionError{StreamID: streamID, Expected: expected.version, Actual: actual}
	}
}

// repeatedMulti decides whether a multi-stream append that could not be written repeats one
// that was: every part with events must repeat its part, else the first part's refusal is the
// answer (cause when no event id of the call is stored).
func (s *Store) repeatedMulti(ctx context.Context, parts []StreamAppend, inputs []appendInput, causeErr error) ([]AppendResult, error) {
	results := make([]AppendResult, len(parts))
	for i, p := range parts {
		if len(p.Events) == 0 {
			info, err := s.Stream(ctx, p.StreamID)
			if err != nil && !errors.Is(err, ErrStreamNotFound) {
				return nil, err
			}
			results[i] = AppendResult{StreamID: p.StreamID, NextExpectedVersion: info.Version}
			continue
		}
		res, err := s.repeated(ctx, p.StreamID, p.Expected, inputs[i], causeErr)
		if err != nil {
			return nil, err
		}
		results[i] = res
	}
	return results, nil
}

// atStream puts a field error of part i in the streams list.
func atStream(i int, err error) error { return inList("streams", i, err) }
