// Package service is Strata's application layer: what every transport (the GraphQL API, the
// WebSocket handler, the CLI) asks of the event store, the runtime and the read models, with the
// decisions that do not depend on the transport: where a read goes (the primary or a streaming
// replica), read-your-writes (consistentWith), time travel (asOf, atVersion), the aggregates'
// reads, commands and live follows (aggregate.go), the owned-category rule, and who may run what
// (Authorize). Transports translate arguments and results; they decide nothing of their own.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/store/readmodel"
	"github.com/strata-es/strata/internal/store/replica"
)

// DefaultConsistencyTimeout bounds how long consistentWith waits unless configured otherwise.
const DefaultConsistencyTimeout = 5 * time.Second

// DefaultMaxReplayEvents bounds the replay behind a list as of a time unless configured.
const DefaultMaxReplayEvents = 100_000

// Service is the application layer over one database (and its replica, if any).
type Service struct {
	Store      *eventstore.Store
	Commands   *command.Handler
	Reader     *query.Reader
	Projectors *projection.Runner
	// Hub feeds live follows.
	Hub *hub.Hub
	// Replica, when set, answers reads of read models and history; nil reads everything from
	// the primary.
	Replica *Replica
	// ConsistencyTimeout bounds the wait of consistentWith; 0 means DefaultConsistencyTimeout.
	ConsistencyTimeout time.Duration
	// MaxReplayEvents bounds the events replayed for a list as of a time; 0 means
	// DefaultMaxReplayEvents.
	MaxReplayEvents int
	// Writing, when set, says that ctx is a request that writes or follows (a mutation, a
	// subscription): such a request reads the primary only, so that what it shows includes
	// what it has just written. The transport knows; nil means none does.
	Writing func(ctx context.Context) bool
	// Logger logs what the layer handles; nil discards.
	Logger *slog.Logger

	// described holds the registered aggregates' descriptions, and readModels the names of
	// their read models, made once (describe): every append checks what the aggregates own,
	// every read waits for their read models, and a Describe builds its lists anew.
	describeOnce sync.Once
	described    []domain.Description
	readModels   []string
}

// Replica is a streaming read replica (READ_DATABASE_URL): reads of read models and history go
// there; docs/design.md ("Read replicas") lists which. Commands, live follows, the projections'
// status and every command's own reads stay on the primary.
type Replica struct {
	// Store, Reader and Commands read the replica. Commands only replays (history, time
	// travel); it never appends, and saves no snapshots.
	Store    *eventstore.Store
	Reader   *query.Reader
	Commands *command.Handler
	// WaitFor waits until the replica shows projection name at pos (projection.Runner.WaitForOn
	// on the replica's pool).
	WaitFor func(ctx context.Context, name string, pos eventstore.Position, timeout time.Duration) error
	// Router says whether the replica is up and counts the reads that fall back to the primary.
	Router *replica.Router
}

// Side is where one read goes: the primary, or the replica.
type Side struct {
	Store    *eventstore.Store
	Reader   *query.Reader
	Commands *command.Handler
	Replica  bool
}

func (s *Service) primary() Side {
	return Side{Store: s.Store, Reader: s.Reader, Commands: s.Commands}
}

func (rep *Replica) side() Side {
	return Side{Store: rep.Store, Reader: rep.Reader, Commands: rep.Commands, Replica: true}
}

// Aggregates are the registered aggregates: the command handler's, or the registry's for a
// service that runs no commands.
func (s *Service) Aggregates() []domain.Kind {
	if s.Commands != nil {
		return s.Commands.Aggregates()
	}
	return aggregates.All()
}

// describe is Describe of each of Aggregates, made on the first call.
func (s *Service) describe() []domain.Description {
	s.describeOnce.Do(func() {
		kinds := s.Aggregates()
		for _, k := range kinds {
			s.described = append(s.described, k.Describe())
		}
		for _, m := range readmodel.All(kinds) {
			s.readModels = append(s.readModels, m.Name())
		}
	})
	return s.described
}

// ReadModels are the names of the registered aggregates' read models: one slice for every
// caller, not to be changed.
func (s *Service) ReadModels() []string {
	s.describe()
	return s.readModels
}

// CheckNotOwned refuses a stream of a category a registered aggregate writes: an event written
// around an aggregate would skip its invariants.
func (s *Service) CheckNotOwned(streamID string) error {
	category := eventstore.Category(streamID)
	for _, d := range s.describe() {
		if category == d.Category || slices.Contains(d.Also, category) {
			owner := d.Name
			if category != d.Category {
				owner += " (" + category + ")"
			}
			return &eventstore.ValidationError{Field: "streamId", Reason: fmt.Sprintf("streams of category %s belong to the %s aggregate; change them with its mutations", category, owner)}
		}
	}
	return nil
}

// CheckEventsNotOwned refuses events that only a registered aggregate's commands may write:
// of one of its event types, or with a tag of one of its tag categories ("email:…"), in any
// stream. list names the events in errors ("events", "writes[2].events").
func (s *Service) CheckEventsNotOwned(list string, events []eventstore.EventData) error {
	for _, d := range s.describe() {
		for i, e := range events {
			if slices.Contains(d.Types, e.Type) {
				return &eventstore.ValidationError{Field: fmt.Sprintf("%s[%d].type", list, i), Reason: fmt.Sprintf("%s events belong to the %s aggregate; write them with its mutations", e.Type, d.Name)}
			}
			for j, tag := range e.Tags {
				for _, c := range d.Tags {
					if strings.HasPrefix(tag, c+":") {
						return &eventstore.ValidationError{Field: fmt.Sprintf("%s[%d].tags[%d]", list, i, j), Reason: fmt.Sprintf("tags %s:… belong to the %s aggregate; its mutations write them", c, d.Name)}
					}
				}
			}
		}
	}
	return nil
}

// request is what one request has decided about its reads: once it went to the primary for
// consistentWith, the rest of it reads there too.
type request struct{ primary atomic.Bool }

type requestKey struct{}

// WithRequest marks ctx as one request: reads made with it share where they go (Read).
func WithRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{})
}

// pinned reports whether the request reads the primary only: one that writes or follows (its
// answer, an order's customer say, shows what it has just written), and one that has gone to the
// primary for consistentWith, so that what else it reads (an order's customer, a user's orders)
// is as fresh and one answer never mixes a fresh read with a staler one.
func (s *Service) pinned(ctx context.Context) bool {
	if s.Writing != nil && s.Writing(ctx) {
		return true
	}
	r, ok := ctx.Value(requestKey{}).(*request)
	return ok && r.primary.Load()
}

func pin(ctx context.Context) {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		r.primary.Store(true)
	}
}

// ErrBehind is what a read on the replica returns when the replica has not replayed what the
// read needs (a time-travel bound, a version asked for): the primary then answers.
var ErrBehind = errors.New("the read replica is behind")

// Read runs fn on the replica when there is one and it is up, and on the primary otherwise, or
// when the replica fails it or fn finds it behind (ErrBehind). fn only reads, so running it
// twice is harmless. A read without consistentWith may be stale on the replica: it shows what
// the replica has replayed.
func (s *Service) Read(ctx context.Context, fn func(Side) error) error {
	if s.Replica == nil || s.pinned(ctx) || !s.Replica.Router.Use(ctx) {
		return fn(s.primary())
	}
	return s.onReplica(ctx, fn)
}

// onReplica runs fn on the replica, and on the primary when the replica fails it.
func (s *Service) onReplica(ctx context.Context, fn func(Side) error) error {
	err := fn(s.Replica.side())
	switch {
	case errors.Is(err, ErrBehind):
		s.Replica.Router.Fallback(ctx, replica.ReasonBehind, nil)
	case err == nil || !s.Replica.Router.Failed(ctx, err):
		return err
	}
	return fn(s.primary())
}

// ReadConsistent is Read with consistentWith: fn runs where every aggregate's read model has
// applied that position (an order's answer may hold its customer, from the users read model,
// so a wait for one alone could mix a fresh order with a stale customer).
func (s *Service) ReadConsistent(ctx context.Context, consistentWith *string, fn func(Side) error) error {
	return s.ReadConsistentOf(ctx, consistentWith, s.ReadModels(), fn)
}

// ReadConsistentOf is ReadConsistent waiting for the read models called models. The replica gets
// up to half the consistency timeout to show the position (its checkpoint rows replicate with
// the read models they describe); then the read, and the rest of the request, go to the
// primary, which waits for what is left of the timeout.
func (s *Service) ReadConsistentOf(ctx context.Context, consistentWith *string, models []string, fn func(Side) error) error {
	if consistentWith == nil || *consistentWith == "" {
		return s.Read(ctx, fn)
	}
	pos, err := eventstore.ParsePosition(*consistentWith)
	if err != nil {
		return &eventstore.ValidationError{Field: "consistentWith", Reason: fmt.Sprintf("%q is not a position a mutation returned", *consistentWith)}
	}
	deadline := time.Now().Add(s.consistencyTimeout())
	if s.Replica != nil && !s.pinned(ctx) && s.Replica.Router.Use(ctx) {
		werr := waitFor(ctx, s.Replica.WaitFor, models, pos, time.Until(deadline)/2)
		if werr == nil {
			// Should the replica fail the read itself, the primary answers it at once: it is at
			// least as far along as its replica.
			return s.onReplica(ctx, fn)
		}
		if ctx.Err() == nil && !s.Replica.Router.Failed(ctx, werr) {
			s.Replica.Router.Fallback(ctx, replica.ReasonBehind, werr)
		}
	}
	pin(ctx)
	if err := waitFor(ctx, s.Projectors.WaitFor, models, pos, time.Until(deadline)); err != nil {
		return err
	}
	return fn(s.primary())
}

// waitFor waits, with wait, until every read model of names has applied pos.
func waitFor(ctx context.Context, wait func(context.Context, string, eventstore.Position, time.Duration) error, names []string, pos eventstore.Position, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, name := range names {
		if err := wait(ctx, name, pos, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) consistencyTimeout() time.Duration {
	if s.ConsistencyTimeout > 0 {
		return s.ConsistencyTimeout
	}
	return DefaultConsistencyTimeout
}

func (s *Service) maxReplay() int {
	if s.MaxReplayEvents > 0 {
		return s.MaxReplayEvents
	}
	return DefaultMaxReplayEvents
}

// ReadBefore is Read for a replay bounded by before (the end of the log as of a time, found on
// the primary): the replica answers only when it has replayed everything before that position,
// so that a time-travel answer is the same wherever it is read.
func (s *Service) ReadBefore(ctx context.Context, before eventstore.Position, fn func(Side) error) error {
	return s.Read(ctx, func(sd Side) error {
		if sd.Replica && !before.IsZero() {
			ok, err := sd.Store.Covers(ctx, before)
			if err != nil {
				return err
			}
			if !ok {
				return ErrBehind
			}
		}
		return fn(sd)
	})
}

// Until turns asOf / atVersion into a replay bound; ok is false when neither is given.
func (s *Service) Until(ctx context.Context, asOf *time.Time, atVersion *int) (u command.Until, ok bool, err error) {
	switch {
	case asOf != nil && atVersion != nil:
		return u, false, &eventstore.ValidationError{Field: "asOf", Reason: "give asOf or atVersion, not both"}
	case atVersion != nil:
		if *atVersion < 1 {
			return u, false, &eventstore.ValidationError{Field: "atVersion", Reason: "must be at least 1"}
		}
		return command.Until{Version: int64(*atVersion)}, true, nil
	case asOf != nil:
		before, err := s.AsOf(ctx, *asOf)
		return command.Until{Before: before}, true, err
	}
	return u, false, nil
}

// AsOf finds the end of the log as of t, waiting (as consistentWith does) for transactions that
// began by t to end. A time in the future has no settled log yet and is refused.
func (s *Service) AsOf(ctx context.Context, t time.Time) (eventstore.Position, error) {
	if t.After(time.Now()) {
		return eventstore.Position{}, &eventstore.ValidationError{Field: "asOf", Reason: fmt.Sprintf("%s is in the future", t.Format(time.RFC3339Nano))}
	}
	return s.Store.AsOf(ctx, t, s.consistencyTimeout())
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}
