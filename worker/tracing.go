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
//
// Tracing is on the path of every event, so it is built to allocate
// little: the start options are made once per worker (spanOptions), the
// settle span's context is the API calls' parent (no second context per
// call), and what is known only per event or at the end goes in with one
// SetAttributes per span (one lock, one growth of the span's attributes,
// one slice instead of one per attribute group).

// spanOptions are the start options of the worker's spans, the same for
// every event: made once with the tracer, so that starting a span makes no
// option. The start attributes are the constant ones a sampler may decide
// by (OpenTelemetry's messaging conventions); the per-event ones (stream
// sequence, attempt) are set when the span ends, with its outcome.
type spanOptions struct {
	settle []trace.SpanStartOption
	call   []trace.SpanStartOption
}

func newSpanOptions() spanOptions {
	return spanOptions{
		settle: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", pathupdate.TraceStream))},
		call: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
	}
}

// startSettle starts h's settle span and returns it with its context,
// under callCtx: the parent of the event's API calls. Nil and nil when
// tracing is off.
func (p *partition) startSettle(h *held) (context.Context, trace.Span) {
	if p.w.tracer == nil {
		return nil, nil
	}
	ctx := pathupdate.ExtractTrace(p.callCtx, p.msgOf(h).Headers())
	return p.w.tracer.Start(ctx, "settle", p.w.spanOpts.settle...)
}

// endSettle ends a's settle span with h's stream sequence and how the
// event was settled.
func endSettle(h *held, a *attempt) {
	if a.span == nil {
		return
	}
	if a.result == "" {
		a.result = "handed_back" // the worker stopped or lost the partition first
	}
	var buf [6]attribute.KeyValue
	attrs := append(buf[:0], attribute.Int64("messaging.nats.stream.sequence", int64(h.seq)),
		attribute.Int("pathupdate.attempt", a.calls), attribute.String("pathupdate.result", a.result))
	a.span.SetAttributes(appendOutcome(attrs, a.outcome)...)
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
	return p.w.tracer.Start(a.ctx, "updatePath", p.w.spanOpts.call...)
}

// endCall ends the span of an API call, the attempt-th, with its outcome.
func endCall(span trace.Span, attempt int, o pathupdate.Outcome) {
	if span == nil {
		return
	}
	var buf [4]attribute.KeyValue
	attrs := append(buf[:0], attribute.Int("pathupdate.attempt", attempt))
	span.SetAttributes(appendOutcome(attrs, o)...)
	if o.Kind != pathupdate.Delivered {
		span.SetStatus(codes.Error, o.Kind.String())
	}
	span.End()
}

// appendOutcome appends the attributes that describe an API answer
// without what it quotes of the event (errmsg may): at most three.
func appendOutcome(attrs []attribute.KeyValue, o pathupdate.Outcome) []attribute.KeyValue {
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
		hd = pathupdate.InjectTrace(a.ctx, nil)
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
