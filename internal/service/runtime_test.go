package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/runtime/command"
	"github.com/strata-es/strata/internal/runtime/projection"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/store/hub"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/store/readmodel"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// A meter is an aggregate declared in this test and nowhere else: a named reading that goes up,
// until the meter is sealed. Its name is unique among meters, and it has a read model. Nothing
// in Strata knows of it: registered here, it gets every feature of the runtime through the
// application layer, which is what every transport calls.
type meter struct {
	ID      string
	Name    string
	Reading int64
	Sealed  bool
}

type meterEvent interface{ EventType() string }

type (
	meterInstalled struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	meterRead   struct{ Units int64 }
	meterSealed struct{}
)

func (meterInstalled) EventType() string { return "MeterInstalled" }
func (meterRead) EventType() string      { return "MeterRead" }
func (meterSealed) EventType() string    { return "MeterSealed" }

type (
	installMeter struct{ ID, Name string }
	readMeter    struct{ Units int64 }
	sealMeter    struct{}
)

func meterDefinition() domain.Aggregate[meter, meterEvent, any] {
	return domain.Aggregate[meter, meterEvent, any]{
		Name: "Meter", Category: "meter", Shape: 1,
		Decode: domain.DecodeJSON[meterEvent]("meter", meterInstalled{}, meterRead{}, meterSealed{}),
		Evolve: func(s meter, e meterEvent) meter {
			switch e := e.(type) {
			case meterInstalled:
				s.ID, s.Name = e.ID, e.Name
			case meterRead:
				s.Reading += e.Units
			case meterSealed:
				s.Sealed = true
			}
			return s
		},
		Decide: func(s meter, c any) ([]meterEvent, error) {
			if c, ok := c.(installMeter); ok {
				return []meterEvent{meterInstalled(c)}, nil
			}
			switch {
			case s.ID == "":
				return nil, fmt.Errorf("meter: %w", domain.ErrNotFound)
			case s.Sealed:
				return nil, domain.Broken("meter-open", "meter %s is sealed", s.ID)
			}
			switch c := c.(type) {
			case readMeter:
				if c.Units < 1 {
					return nil, domain.Broken("units-positive", "a reading adds at least 1 unit")
				}
				return []meterEvent{meterRead(c)}, nil
			case sealMeter:
				return []meterEvent{meterSealed{}}, nil
			}
			return nil, fmt.Errorf("meter: unknown command %T", c)
		},
		Unique: []domain.Unique[meter]{{Rule: "meter-name-unique", Name: "name", Category: "metername", Key: func(s meter) string { return strings.ToLower(s.Name) }}},
		ReadModel: &domain.ReadModel{
			Table:   "meters",
			Columns: []domain.Column{{Name: "id", Field: "ID"}, {Name: "name", Field: "Name"}, {Name: "reading", Field: "Reading"}, {Name: "sealed", Field: "Sealed"}},
			Filters: []domain.Filter{{Name: "sealed", Column: "sealed"}, {Name: "nameContains", Column: "name", Match: domain.Contains}},
		},
	}
}

// The meters table, as the aggregate's migration would make it.
const metersTable = `CREATE TABLE meters (
	id uuid PRIMARY KEY, name text NOT NULL, reading bigint NOT NULL, sealed boolean NOT NULL,
	version bigint NOT NULL, position text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
	applied bigint NOT NULL DEFAULT 0);
CREATE INDEX meters_sealed_id ON meters (sealed, id);
INSERT INTO projection_checkpoints (name) VALUES ('meters');`

type fixture struct {
	svc     *service.Service
	runner  *projection.Runner
	def     domain.Aggregate[meter, meterEvent, any]
	install func(t *testing.T, name string) command.Result[meter]
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	if _, err := pool.Exec(ctx, metersTable); err != nil {
		t.Fatal(err)
	}
	def := meterDefinition()
	kinds := append(aggregates.All(), def) // the registration
	logger := slog.New(slog.DiscardHandler)
	var (
		runner *projection.Runner
		feed   *hub.Hub
	)
	store := eventstore.New(pool, eventstore.Options{Upcasters: command.Upcasters(kinds), Appended: func(c []string) { runner.WakeFor(c); feed.Appended(c) }})
	runner = projection.NewRunner(pool, store, projection.For(kinds), projection.Options{Poll: 10 * time.Millisecond}, logger)
	feed = hub.New(pool, store, hub.Options{}, logger)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{runner.Run, feed.Run} {
		wg.Go(func() { _ = run(runCtx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	f := &fixture{
		svc: &service.Service{Store: store, Commands: command.New(store, command.Options{Aggregates: kinds, SnapshotEvery: map[string]int{"meter": 2}, MaxAttempts: 50}),
			Reader: query.New(pool), Projectors: runner, Hub: feed, ConsistencyTimeout: 10 * time.Second},
		runner: runner, def: def,
	}
	f.install = func(t *testing.T, name string) command.Result[meter] {
		t.Helper()
		id, err := command.NewID()
		if err != nil {
			t.Fatal(err)
		}
		res, err := service.Execute(ctx, f.svc, def, false, command.Call[meter, any]{Name: "installMeter", ID: id, New: true, Command: installMeter{ID: id, Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	return f
}

func (f *fixture) do(id string, expected *int64, dryRun bool, c any) (command.Result[meter], error) {
	return service.Execute(context.Background(), f.svc, f.def, dryRun, command.Call[meter, any]{Name: "meterCommand", ID: id, Expected: expected, Command: c})
}

func ptr[T any](v T) *T { return &v }

func TestAnAggregateDeclaredInATestGetsTheWholeRuntime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	// Commands: the events appended, the unique name claimed, rules, not found, expected
	// versions and dry runs.
	first := f.install(t, "Hall")
	id := first.State.ID
	if first.Version != 1 || first.Position.IsZero() || len(first.Events) != 1 || first.Events[0].Type != "MeterInstalled" ||
		len(first.Events[0].Tags) != 1 || !strings.HasPrefix(first.Events[0].Tags[0], "metername:") {
		t.Fatalf("install: %+v", first)
	}
	var broken *domain.InvariantError
	if _, err := service.Execute(ctx, f.svc, f.def, false, command.Call[meter, any]{Name: "installMeter", ID: "0190b6a4-0000-7000-8000-000000000001", New: true, Command: installMeter{ID: "0190b6a4-0000-7000-8000-000000000001", Name: "HALL"}}); !errors.As(err, &broken) || broken.Rule != "meter-name-unique" {
		t.Errorf("a second meter named hall: %v", err)
	}
	if _, err := f.do(id, nil, false, readMeter{Units: 0}); !errors.As(err, &broken) || broken.Rule != "units-positive" {
		t.Errorf("a reading of 0: %v", err)
	}
	if _, err := f.do("0190b6a4-0000-7000-8000-000000000002", nil, false, readMeter{Units: 1}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("an unknown meter: %v", err)
	}
	if _, err := f.do("not-an-id", nil, false, readMeter{Units: 1}); err == nil {
		t.Error("a malformed id was accepted")
	}
	read, err := f.do(id, ptr(int64(1)), false, readMeter{Units: 5})
	if err != nil || read.State.Reading != 5 || read.Version != 2 {
		t.Fatalf("a reading: %+v %v", read, err)
	}
	var wrong *eventstore.WrongExpectedVersionError
	if _, err := f.do(id, ptr(int64(1)), false, readMeter{Units: 1}); !errors.As(err, &wrong) {
		t.Errorf("a stale expected version: %v", err)
	}
	dry, err := f.do(id, nil, true, readMeter{Units: 100})
	if err != nil || !dry.DryRun || dry.State.Reading != 105 || !dry.Position.IsZero() || len(dry.Events) != 1 {
		t.Errorf("a dry run: %+v %v", dry, err)
	}
	// Concurrent readings are all applied: conflicts are retried (up to MaxAttempts, raised
	// here so that eight writers on one stream all get through).
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := f.do(id, nil, false, readMeter{Units: 1})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent reading: %v", err)
		}
	}
	last, err := f.do(id, nil, false, readMeter{Units: 2})
	if err != nil || last.State.Reading != 15 || last.Version != 11 {
		t.Fatalf("after the concurrent readings: %+v %v", last, err)
	}
	other := f.install(t, "Cellar")
	sealed, err := f.do(other.State.ID, nil, false, sealMeter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.do(other.State.ID, nil, false, readMeter{Units: 1}); !errors.As(err, &broken) || broken.Rule != "meter-open" {
		t.Errorf("reading a sealed meter: %v", err)
	}

	// Its read model, kept by its projector, read your writes with consistentWith.
	pos := sealed.Position.String()
	got, ok, err := service.One(ctx, f.svc, f.def, id, &pos, nil, nil)
	if err != nil || !ok || got.State.Reading != 15 || got.Version != 11 || got.State.Name != "Hall" {
		t.Fatalf("the meter with consistentWith: %+v %v %v", got, ok, err)
	}
	page, err := service.List(ctx, f.svc, f.def, readmodel.Filters{"sealed": "true"}, readmodel.Page{First: 10}, &pos, nil)
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != other.State.ID || page.More {
		t.Errorf("sealed meters: %+v %v", page, err)
	}
	page, err = service.List(ctx, f.svc, f.def, readmodel.Filters{"nameContains": "ELL"}, readmodel.Page{First: 10}, &pos, nil)
	if err != nil || len(page.Items) != 1 || page.Items[0].State.Name != "Cellar" {
		t.Errorf("meters named like ell: %+v %v", page, err)
	}
	page, err = service.List(ctx, f.svc, f.def, nil, readmodel.Page{First: 1}, &pos, nil)
	if err != nil || len(page.Items) != 1 || !page.More {
		t.Errorf("a page of one meter: %+v %v", page, err)
	}
	loaded, err := service.Load(ctx, f.svc, f.def, []string{id, other.State.ID, "0190b6a4-0000-7000-8000-000000000003"})
	if err != nil || loaded[id].State.Reading != 15 || !loaded[other.State.ID].State.Sealed || loaded["0190b6a4-0000-7000-8000-000000000003"].Exists() {
		t.Errorf("meters loaded by id: %+v %v", loaded, err)
	}

	// History with changes, the state at a version and at a time, the list as of a time.
	history, err := service.History(ctx, f.svc, f.def, id)
	if err != nil || len(history) != 11 {
		t.Fatalf("history: %d entries, %v", len(history), err)
	}
	if c := history[1].Changes; len(c) != 1 || c[0].Field != "Reading" || string(c[0].Before) != "0" || string(c[0].After) != "5" {
		t.Errorf("the first reading changed %+v", c)
	}
	atTwo, ok, err := service.One(ctx, f.svc, f.def, id, nil, nil, ptr(2))
	if err != nil || !ok || atTwo.State.Reading != 5 || atTwo.Version != 2 {
		t.Errorf("at version 2: %+v %v %v", atTwo, ok, err)
	}
	readAt := history[1].Event.RecordedAt
	then, ok, err := service.One(ctx, f.svc, f.def, id, nil, &readAt, nil)
	if err != nil || !ok || then.Version != 2 {
		t.Errorf("as of the first reading: %+v %v %v", then, ok, err)
	}
	pageThen, err := service.List(ctx, f.svc, f.def, nil, readmodel.Page{First: 10}, nil, &readAt)
	if err != nil || len(pageThen.Items) != 1 || pageThen.Items[0].State.Reading != 5 {
		t.Errorf("meters as of the first reading: %+v %v", pageThen, err)
	}
	// The list as of a time filters as the table does.
	now := time.Now()
	for filter, want := range map[string]int{"HALL": 1, "ell": 1, "a": 2, "attic": 0} {
		page, err := service.List(ctx, f.svc, f.def, readmodel.Filters{"nameContains": filter}, readmodel.Page{First: 10}, nil, &now)
		if err != nil || len(page.Items) != want {
			t.Errorf("meters named like %q as of now: %+v %v, want %d", filter, page, err, want)
		}
	}
	sealedNow, err := service.List(ctx, f.svc, f.def, readmodel.Filters{"sealed": "true"}, readmodel.Page{First: 10}, nil, &now)
	if err != nil || len(sealedNow.Items) != 1 || sealedNow.Items[0].ID != other.State.ID {
		t.Errorf("sealed meters as of now: %+v %v", sealedNow, err)
	}

	// Its state live: now, then after each event.
	followCtx, stop := context.WithCancel(ctx)
	states := make(chan command.Loaded[meter], 4)
	ended := make(chan error, 1)
	err = service.Follow(followCtx, f.svc, f.def, id,
		func(l command.Loaded[meter]) { states <- l },
		func(l command.Loaded[meter], _ <-chan struct{}) bool { states <- l; return true },
		func(err error) { ended <- err })
	if err != nil {
		t.Fatal(err)
	}
	if l := <-states; l.Version != 11 || l.State.Reading != 15 {
		t.Errorf("followed first %+v", l)
	}
	followed, err := f.do(id, nil, false, readMeter{Units: 3})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-states:
		if l.Version != 12 || l.State.Reading != 18 {
			t.Errorf("followed next %+v", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no state after a reading")
	}
	stop()
	select {
	case err := <-ended:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the follow ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follow did not end with its context")
	}

	// The projector's lag, and a rebuild that swaps in the same rows.
	if err := f.runner.WaitFor(ctx, "meters", followed.Position, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before, err := service.List(ctx, f.svc, f.def, nil, readmodel.Page{First: 10}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.runner.Rebuild(ctx, "meters", nil); err != nil {
		t.Fatal(err)
	}
	after, err := service.List(ctx, f.svc, f.def, nil, readmodel.Page{First: 10}, nil, nil)
	if err != nil || fmt.Sprint(before) != fmt.Sprint(after) || len(after.Items) != 2 {
		t.Errorf("meters before the rebuild %+v, after %+v (%v)", before, after, err)
	}
	infos, err := f.runner.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range infos {
		found = found || in.Name == "meters"
	}
	if !found {
		t.Errorf("projections %+v lack meters", infos)
	}

	// Its streams and its names' claims are its own.
	for _, stream := range []string{"meter-" + id, "metername-x"} {
		if err := f.svc.CheckNotOwned(stream); err == nil || !strings.Contains(err.Error(), "Meter") {
			t.Errorf("appending to %s around the aggregate: %v", stream, err)
		}
	}
}
