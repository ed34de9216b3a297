package command

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// tracerName is the instrumentation scope of the commands' spans.
const tracerName = "github.com/strata-es/strata/internal/runtime/command"

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startCommand starts the span of one command ("command registerUser"): its loads, its tries
// and its append are children. Its name is the command's, one of a fixed few.
func (h *Handler) startCommand(ctx context.Context, name, aggregate, streamID string) (context.Context, trace.Span) {
	ctx, span := h.tracer.Start(ctx, "command "+name)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("strata.command", name),
			attribute.String("strata.aggregate", aggregate),
			attribute.String("strata.stream_id", streamID),
			attribute.Bool("strata.dry_run", h.dryRun),
		)
	}
	return ctx, span
}

// endCommand ends a command's span. A refusal the domain or the caller caused (an invariant, a
// version conflict, bad input) is recorded as an event, not as the span's failure: the server
// did its job.
func endCommand(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		var broken *domain.InvariantError
		var wrong *eventstore.WrongExpectedVersionError
		var invalid *eventstore.ValidationError
		if !errors.As(err, &broken) && !errors.As(err, &wrong) && !errors.As(err, &invalid) && !errors.Is(err, domain.ErrNotFound) {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
