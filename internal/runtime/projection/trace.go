package projection

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the projectors' spans.
const tracerName = "github.com/strata-es/strata/internal/runtime/projection"

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startBatch starts the span of one batch a projector applies ("projection.batch users"), a
// root: the batch serves many appends of many traces. It starts at start, when the batch's
// checkpoint was read, so that it covers the read; the transaction's statements are its
// children. Polls that find nothing make no span: an idle server's projectors trace nothing.
func (r *Runner) startBatch(ctx context.Context, p Projector, checkpoint string, events int, start time.Time) (context.Context, trace.Span) {
	ctx, span := r.tracer.Start(ctx, "projection.batch "+p.Name(), trace.WithNewRoot(), trace.WithTimestamp(start))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("strata.projection", p.Name()),
			attribute.String("strata.checkpoint", checkpoint),
			attribute.Int("strata.events", events),
		)
	}
	return ctx, span
}

// endBatch ends a batch's span with how many events it applied.
func endBatch(span trace.Span, applied int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("strata.events_applied", applied))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
