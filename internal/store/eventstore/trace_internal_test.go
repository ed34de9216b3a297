package eventstore

import (
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"
)

// With tracing off (the no-op provider), an append's span costs one small allocation (the
// context that holds it), whatever the number of events: no attributes are built.
func TestAppendSpanWhenOffAllocatesOnce(t *testing.T) {
	s := &Store{tracer: newTracer(noop.NewTracerProvider())}
	events := make([]EventData, 100)
	for i := range events {
		events[i] = EventData{Type: "Happened", Data: json.RawMessage(`{}`)}
	}
	parts := []StreamAppend{{StreamID: "s-1", Events: events}, {StreamID: "s-2", Events: events}}
	results := []AppendResult{{}, {}}
	allocs := testing.AllocsPerRun(100, func() {
		_, span := s.startAppend(context.Background(), parts)
		endAppend(span, results, nil)
	})
	if allocs > 1 {
		t.Errorf("an append's span with tracing off: %v allocations, want at most 1", allocs)
	}
	batch := []*pending{{ctx: context.Background()}, {ctx: context.Background()}}
	allocs = testing.AllocsPerRun(100, func() {
		_, span := s.startGroup(context.Background(), batch)
		endSpan(span, nil)
	})
	if allocs > 0 {
		t.Errorf("a group commit's span with no traced append: %v allocations, want none", allocs)
	}
}
