package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Query selects events by types and tags, as the Dynamic Consistency Boundary specification
// defines it: an event matches when it matches any item. No item matches nothing.
type Query struct {
	Items []QueryItem
}

// QueryItem matches an event of one of Types (any type when Types is empty) that carries every
// one of Tags. An item with neither matches every event.
type QueryItem struct {
	Types []string
	Tags  []string
}

// MaxQueryItems bounds the items of one query, and so the size of the statement it becomes.
const MaxQueryItems = 32

// Condition makes an append conditional: it writes nothing and fails with a
// *ConditionFailedError when an event matching FailIfEventsMatch lies after After in the global
// order, which the read that gave After cannot have seen. The zero After means the whole log.
type Condition struct {
	FailIfEventsMatch Query
	After             Position
}

// ErrHeldBack says that reads did not show a committed event within the time a writer waited:
// a transaction that runs long holds them back (HeldBackBy names it). Retrying later is safe.
var ErrHeldBack = errors.New("reads are held back by a transaction that runs long")

// ErrConditionFailed is matched (errors.Is) by every *ConditionFailedError.
var ErrConditionFailed = errors.New("append condition failed")

// ConditionFailedError says that an event matching an append's condition lies after its read
// position; Position is one such event's. Nothing was written.
type ConditionFailedError struct {
	Position Position
}

func (e *ConditionFailedError) Error() string {
	return fmt.Sprintf("append condition failed: the event at %s matches", e.Position)
}

// Is makes errors.Is(err, ErrConditionFailed) hold.
func (e *ConditionFailedError) Is(target error) bool { return target == ErrConditionFailed }

// codeAfterUnsettled is append_refused's code for a read position that is not settled yet
// (migrations/00012_event_tags.sql). Its SC001, a failed condition, is unused: the condition
// is checked inside the statement that writes (pgsql.EventstoreGroupWaveIf).
const codeAfterUnsettled = "SC002"

// ValidateQuery checks a query's items: bounded lists of names; field names it in errors.
func ValidateQuery(field string, q Query) error {
	if len(q.Items) > MaxQueryItems {
		return &ValidationError{Field: field + ".items", Reason: fmt.Sprintf("%d items, the limit is %d", len(q.Items), MaxQueryItems)}
	}
	for i, it := range q.Items {
		at := func(list string, j int, err error) error {
			var v *ValidationError
			if errors.As(err, &v) {
				return &ValidationError{Field: fmt.Sprintf("%s.items[%d].%s[%d]", field, i, list, j), Reason: v.Reason}
			}
			return err
		}
		if len(it.Types) > MaxTags {
			return &ValidationError{Field: fmt.Sprintf("%s.items[%d].types", field, i), Reason: fmt.Sprintf("%d types, the limit is %d", len(it.Types), MaxTags)}
		}
		if len(it.Tags) > MaxTags {
			return &ValidationError{Field: fmt.Sprintf("%s.items[%d].tags", field, i), Reason: fmt.Sprintf("%d tags, the limit is %d", len(it.Tags), MaxTags)}
		}
		for j, t := range it.Types {
			if err := validateName("type", t, MaxEventTypeLen); err != nil {
				return at("types", j, err)
			}
		}
		for j, t := range it.Tags {
			if err := validateName("tag", t, MaxTagLen); err != nil {
				return at("tags", j, err)
			}
		}
	}
	return nil
}

// shape is the query's statement shape and its values, as pgsql's builders number them.
func (q Query) shape() ([]pgsql.MatchItem, []any) {
	items := make([]pgsql.MatchItem, len(q.Items))
	var args []any
	for i, it := range q.Items {
		items[i] = pgsql.MatchItem{Types: len(it.Types) > 0, Tags: len(it.Tags) > 0}
		if items[i].Types {
			args = append(args, it.Types)
		}
		if items[i].Tags {
			args = append(args, it.Tags)
		}
	}
	return items, args
}

// Matches reports whether e matches q, as the statements of pgsql decide it.
func (q Query) Matches(e RecordedEvent) bool {
	for _, it := range q.Items {
		if it.matches(e) {
			return true
		}
	}
	return false
}

func (it QueryItem) matches(e RecordedEvent) bool {
	return it.matchesEvent(e.Type, e.Tags)
}

func (it QueryItem) matchesEvent(typ string, tags []string) bool {
	if len(it.Types) > 0 && !slices.Contains(it.Types, typ) {
		return false
	}
	for _, t := range it.Tags {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}

// matchesInput reports whether an event of inputs, not yet written, matches q.
func (q Query) matchesInput(inputs []appendInput) bool {
	for _, in := range inputs {
		for k, typ := range in.types {
			for _, it := range q.Items {
				if it.matchesEvent(typ, in.tags[k]) {
					return true
				}
			}
		}
	}
	return false
}

// lockKeys are the keys a condition on q takes exclusive, and whether it must hold off every
// append (an item that matches every event). An event matching an item with tags carries the
// item's first tag, so its append holds that tag's key shared; one matching an item with types
// only holds its type's key; so each such append and the condition take turns.
func (q Query) lockKeys() (keys []string, all bool) {
	for _, it := range q.Items {
		switch {
		case len(it.Tags) > 0:
			keys = append(keys, tagKey(it.Tags[0]))
		case len(it.Types) > 0:
			for _, t := range it.Types {
				keys = append(keys, typeKey(t))
			}
		default:
			all = true
		}
	}
	return keys, all
}

// ReadQuery reads the events that match q in the global order, after the position after
// (exclusive), at most max of them: as ReadAll, gap-free under concurrent writers, so paging
// with the position of the last event returned walks every matching event exactly once. A query
// without items matches nothing.
func (s *Store) ReadQuery(ctx context.Context, q Query, after Position, limit int) ([]RecordedEvent, error) {
	if err := s.checkMax(limit); err != nil {
		return nil, err
	}
	if err := ValidateQuery("query", q); err != nil {
		return nil, err
	}
	if len(q.Items) == 0 {
		return nil, nil
	}
	items, values := q.shape()
	return s.readEvents(ctx, "read query", pgsql.EventstoreReadQuery(items), append([]any{after.tx, after.seq, limit}, values...)...)
}

// LastMatch returns the position of the last committed event that matches q, whether reads
// show it yet or not (ok is false when none does). Reads stop below transactions still running
// (ReadAll): a writer that must decide from every committed event waits until reads show this
// one (WaitReadable) before it reads.
func (s *Store) LastMatch(ctx context.Context, q Query) (pos Position, ok bool, err error) {
	if err := ValidateQuery("query", q); err != nil {
		return Position{}, false, err
	}
	if len(q.Items) == 0 {
		return Position{}, false, nil
	}
	items, values := q.shape()
	err = s.pool.QueryRow(ctx, pgsql.EventstoreLastMatch(items), values...).Scan(&pos.tx, &pos.seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("last match: %w", err)
	}
	return pos, true, nil
}

// AppendIf is Append under a condition: it writes nothing, and returns a *ConditionFailedError,
// when an event matching cond.FailIfEventsMatch lies after cond.After in the global order,
// including events of appends that were still in flight when it was checked. Two conditional
// appends whose conditions could match each other's events take turns, so that at most one of
// them succeeds; appends whose events no condition could match never wait for each other.
//
// cond.After must be a position a read returned (ReadAll, ReadQuery, a subscription): a
// position that is not below the horizon yet, as one an append returns while older transactions
// still run, is refused with a *ValidationError (docs/consistency.md says why). A repeat of an
// append that succeeded answers Repeated before the condition counts. With group commit, a
// conditional append joins a batch after the batch's plain appends, so that its check sees
// them too, and after any conditional one whose events its condition matches; a deleted stream
// refuses it (it does not recreate the stream as Append does).
func (s *Store) AppendIf(ctx context.Context, streamID string, expected ExpectedVersion, events []EventData, cond Condition) (AppendResult, error) {
	results, err := s.AppendMultiIf(ctx, []StreamAppend{{StreamID: streamID, Expected: expected, Events: events}}, &cond)
	if err != nil {
		return AppendResult{}, err
	}
	return results[0], nil
}

// AppendMultiIf is AppendMulti under a condition (nil: none), with AppendIf's rules: every
// expected version and the condition hold and every part is written, or nothing is.
func (s *Store) AppendMultiIf(ctx context.Context, parts []StreamAppend, cond *Condition) (results []AppendResult, err error) {
	if cond == nil {
		return s.AppendMulti(ctx, parts)
	}
	ctx, span := s.startAppend(ctx, parts)
	defer func() { endAppend(span, results, err) }()
	start := time.Now()
	results, err = s.appendParts(ctx, parts, cond)
	if s.opts.Observer != nil {
		s.opts.Observer.Appended(writtenAll(results), time.Since(start), err)
	}
	return results, err
}

// conditionalAlone writes the conditional append p in a transaction of its own: a group
// commit's batch of one (runBatch), so that alone and in a batch it is the same statements.
func (s *Store) conditionalAlone(ctx context.Context, p *pending) ([]AppendResult, error) {
	rows, err := s.runBatch(ctx, []*pending{p}, [][]*pending{{p}})
	if err != nil {
		err = refusal(err)
		var pgErr *pgconn.PgError
		var invalid *ValidationError
		switch {
		case errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "22":
			return nil, &ValidationError{Field: "events", Reason: pgErr.Message}
		case errors.As(err, &invalid):
			return nil, err
		}
		return nil, fmt.Errorf("append to %s: %w", p.parts[0].StreamID, err)
	}
	// The condition's status, a conflict or a repeat, as a batch's append is answered.
	if s.answer(p, rows[0]) {
		s.appended(streamIDs(p.parts)...)
	}
	return p.results, p.err
}

// refusal turns the refusal of a read position that is not settled yet (append_refused's
// SC002) into a *ValidationError.
func refusal(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeAfterUnsettled {
		return &ValidationError{Field: "condition.after", Reason: "is not a read position yet: transactions older than it are still running (take it from a read, not from an append's result)"}
	}
	return err
}
