package worker

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// The worker's spans (Config.TracerProvider): one "settle" per event a
// lane settles, a child of the trace context the event's message carries
// (traceparent, set by the publisher, the gateway or a producer of its
// own), and one "updatePath" per API call under it. Their attributes are
// the outcome, errcode and attempt, never the waybill, the token or the
// message: a trace backend is not where a waybill may be looked up.
// With tracing off (no TracerProvider) none of this runs.

// startSettle starts h's settle span; nil when tracing is off.
func (p *partition) startSettle(h *held) trace.Span {
	if p.w.tracer == nil {
		return nil
	}
	ctx := pathupdate.ExtractTrace(context.Background(), p.msgOf(h).Headers())
	_, span := p.w.tracer.Start(ctx, "settle", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", pathupdate.TraceStream),
			attribute.Int64("messaging.nats.stream.sequence", int64(h.seq))))
	return span
}

// endSettle ends a's settle span with how the event was settled.
func endSettle(a *attempt) {
	if a.span == nil {
		return
	}
	a.span.SetAttributes(outcomeAttributes(a.outcome)...)
	a.span.SetAttributes(attribute.Int("pathupdate.attempt", a.calls))
	if a.result == "" {
		a.result = "handed_back" // the worker stopped or lost the partition first
	}
	a.span.SetAttributes(attribute.String("pathupdate.result", a.result))
	if a.result != "delivered" && a.result != "handed_back" {
		a.span.SetStatus(codes.Error, a.result)
	}
	a.span.End()
}

// startCall starts the span of one API call under a's settle span and
// returns the context the call takes; callCtx and nil when tracing is off.
func (p *partition) startCall(a *attempt) (context.Context, trace.Span) {
	if a.span == nil {
		return p.callCtx, nil
	}
	return p.w.tracer.Start(trace.ContextWithSpan(p.callCtx, a.span), "updatePath", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("pathupdate.attempt", a.calls)))
}

// endCall ends an API call's span with its outcome.
func endCall(span trace.Span, o pathupdate.Outcome) {
	if span == nil {
		return
	}
	span.SetAttributes(outcomeAttributes(o)...)
	if o.Kind != pathupdate.Delivered {
		span.SetStatus(codes.Error, o.Kind.String())
	}
	span.End()
}

// outcomeAttributes describe an API answer without what it quotes of the
// event (errmsg may).
func outcomeAttributes(o pathupdate.Outcome) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 3)
	if o.Kind != 0 {
		attrs = append(attrs, attribute.String("pathupdate.outcome", o.Kind.String()))
	}
	if o.ErrCode != 0 || o.HTTPStatus == http.StatusOK {
		attrs = append(attrs, attribute.Int("pathupdate.errcode", o.ErrCode))
	}
	if o.HTTPStatus != 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", o.HTTPStatus))
	}
	return attrs
}

// traceContextOf is the trace context h's dead letter keeps: the settle
// span's when tracing is on (the replay's spans then follow it), else the
// message's own headers, as the producer sent them.
func (p *partition) traceContextOf(h *held, a attempt) (parent, state string) {
	hd := p.msgOf(h).Headers()
	if a.span != nil {
		hd = pathupdate.InjectTrace(trace.ContextWithSpan(context.Background(), a.span), nil)
	}
	c := pathupdate.HeaderCarrier(hd)
	return c.Get(pathupdate.TraceParentHeader), c.Get(pathupdate.TraceStateHeader)
}

// traceIDOf is the trace id a log line about h carries, "" without one.
func (p *partition) traceIDOf(h *held, a attempt) string {
	if a.span != nil {
		return a.span.SpanContext().TraceID().String()
	}
	return pathupdate.TraceIDOf(pathupdate.ExtractTrace(context.Background(), p.msgOf(h).Headers()))
}
