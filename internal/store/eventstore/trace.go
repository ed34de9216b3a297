package eventstore

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Tracing: a span per Append, AppendMulti and ForgetAndAppend call ("eventstore.append"), under
// the caller's span; the SQL statements it runs (the pool's tracer) are its children. An append
// that waits for a group commit is written by another goroutine, in a transaction it shares:
// that transaction gets a span of its own ("eventstore.group_commit"), a root, linked to the
// span of every append it carries, and each of those appends is linked back to it. Neither is
// the other's parent, because a group has many callers and a caller's trace would otherwise
// seem to hold the work of others. An append alone in the queue is written in its own context,
// as without grouping, and has no group span. With the no-op provider (no exporter), a span is
// a context value and nothing else: attributes are set only on spans that record.

// tracerName is the instrumentation scope of the store's spans.
const tracerName = "github.com/strata-es/strata/internal/store/eventstore"

// Span attributes of the store's spans.
const (
	attrStream  = attribute.Key("strata.stream_id")
	attrStreams = attribute.Key("strata.streams")
	attrEvents  = attribute.Key("strata.events")
	attrAppends = attribute.Key("strata.appends")
	attrWritten = attribute.Key("strata.events_written")
)

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startAppend starts the span of one append call of parts.
func (s *Store) startAppend(ctx context.Context, parts []StreamAppend) (context.Context, trace.Span) {
	ctx, span := s.tracer.Start(ctx, "eventstore.append")
	if span.IsRecording() {
		events := 0
		for _, p := range parts {
			events += len(p.Events)
		}
		attrs := []attribute.KeyValue{attrStreams.Int(len(parts)), attrEvents.Int(events)}
		if len(parts) > 0 {
			attrs = append(attrs, attrStream.String(parts[0].StreamID))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endAppend ends an append's span with what it wrote and its error.
func endAppend(span trace.Span, results []AppendResult, err error) {
	if span.IsRecording() {
		span.SetAttributes(attrWritten.Int(writtenAll(results)))
		endSpan(span, err)
		return
	}
	span.End()
}

// endSpan ends span, marking it failed with err when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startGroup starts the span of a group commit of batch, linked to each append's span, and
// links each of those back to it. When no append in the batch is sampled, neither is the group:
// its span is a no-op.
func (s *Store) startGroup(ctx context.Context, batch []*pending) (context.Context, trace.Span) {
	var links []trace.Link
	for _, p := range batch {
		if sc := trace.SpanContextFromContext(p.ctx); sc.IsSampled() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if len(links) == 0 {
		return ctx, trace.SpanFromContext(ctx)
	}
	ctx, span := s.tracer.Start(ctx, "eventstore.group_commit", trace.WithNewRoot(), trace.WithLinks(links...))
	if span.IsRecording() {
		events := 0
		for _, p := range batch {
			events += p.events
		}
		span.SetAttributes(attrAppends.Int(len(batch)), attrEvents.Int(events))
		group := trace.Link{SpanContext: span.SpanContext()}
		for _, p := range batch {
			if caller := trace.SpanFromContext(p.ctx); caller.IsRecording() {
				caller.AddLink(group)
			}
		}
	}
	return ctx, span
}
