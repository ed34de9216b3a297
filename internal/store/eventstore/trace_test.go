package eventstore_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	. "github.com/strata-es/strata/internal/store/eventstore" //nolint:revive // the tests read as the package's own
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// Appends written by one group commit each have their span under their caller's; the group has
// a span of its own, a root, linked to each of theirs, and each of theirs links back to it. An
// append written alone (the blocker) makes no group span.
func TestGroupCommitSpans(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pool := dbtest.PoolFor(t, dbtest.URL(t), 20)
	g := &groupRig{t: t, s: New(pool, Options{GroupCommit: true, GroupWriters: 1, TracerProvider: tp}), pool: pool, ctx: t.Context()}
	ev := []EventData{{Type: "Happened", Data: json.RawMessage(`{}`)}}
	var mu sync.Mutex
	callers := map[string]string{} // caller span id → stream
	appendTo := func(stream string) func() (AppendResult, error) {
		return func() (AppendResult, error) {
			ctx, span := tp.Tracer("test").Start(t.Context(), "caller")
			defer span.End()
			mu.Lock()
			callers[span.SpanContext().SpanID().String()] = stream
			mu.Unlock()
			return g.s.Append(ctx, stream, NoStream(), ev)
		}
	}
	for i, o := range g.batch(appendTo("traced-a"), appendTo("traced-b")) {
		if o.err != nil {
			t.Fatalf("append %d: %v", i, o.err)
		}
	}
	// The writer ends the group's span once it has answered the appends: wait for it.
	var groups, appends []tracetest.SpanStub
	for deadline := time.Now().Add(10 * time.Second); ; {
		groups, appends = nil, nil
		for _, sp := range exp.GetSpans() {
			switch sp.Name {
			case "eventstore.group_commit":
				groups = append(groups, sp)
			case "eventstore.append":
				if _, ok := callers[sp.Parent.SpanID().String()]; ok {
					appends = append(appends, sp)
				}
			}
		}
		if len(groups) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(groups) != 1 || len(appends) != 2 {
		t.Fatalf("%d group spans and %d traced append spans, want 1 and 2: %v", len(groups), len(appends), exp.GetSpans())
	}
	group := groups[0]
	if group.Parent.IsValid() {
		t.Errorf("group span has parent %v, want a root", group.Parent)
	}
	for _, kv := range group.Attributes {
		if kv.Key == "strata.appends" && kv.Value.AsInt64() != 2 {
			t.Errorf("group span: strata.appends %d, want 2", kv.Value.AsInt64())
		}
	}
	linked := map[string]bool{}
	for _, l := range group.Links {
		linked[l.SpanContext.SpanID().String()] = true
	}
	for _, a := range appends {
		if !linked[a.SpanContext.SpanID().String()] {
			t.Errorf("group span does not link the append to %s", callers[a.Parent.SpanID().String()])
		}
		if len(a.Links) != 1 || a.Links[0].SpanContext.SpanID() != group.SpanContext.SpanID() {
			t.Errorf("append to %s links %v, want the group span %s", callers[a.Parent.SpanID().String()], a.Links, group.SpanContext.SpanID())
		}
	}
}
