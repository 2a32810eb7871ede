package pathupdate

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C trace context (https://www.w3.org/TR/trace-context/) on NATS
// messages: a trace event, a dead letter and a replayed event carry the
// trace they belong to in these headers, so that one trace runs from a
// producer (in any language: it sets traceparent itself) through the
// worker's API call to a dead letter and its replay.
const (
	TraceParentHeader = "traceparent"
	TraceStateHeader  = "tracestate"
)

// TracerName is the instrumentation name of pathupdate's spans.
const TracerName = "github.com/pathupdate/pathupdate"

// traceContext is the W3C propagator. It is a value, not the global one
// of package otel: pathupdate sets no package-level state.
var traceContext propagation.TraceContext

// HeaderCarrier lets the W3C propagator read and write nats.Header. Keys
// are written lower case, as W3C names them; reading ignores case, since
// NATS headers keep the case a producer used (http.Header's carrier would
// look for "Traceparent" only).
type HeaderCarrier nats.Header

// Get returns the first value of key, whatever its case.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces key's values (any case) with value.
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// ExtractTrace returns ctx carrying the remote span context of h's
// traceparent and tracestate; ctx itself when h has none (or a malformed
// one).
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return traceContext.Extract(ctx, HeaderCarrier(h))
}

// InjectTrace writes ctx's span context into h (made when nil) and
// returns it; h unchanged when ctx carries no valid span context.
func InjectTrace(ctx context.Context, h nats.Header) nats.Header {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return h
	}
	if h == nil {
		h = nats.Header{}
	}
	traceContext.Inject(ctx, HeaderCarrier(h))
	return h
}

// TraceIDOf is the trace id in ctx, "" without one: what logs carry as
// trace_id.
func TraceIDOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// TracerOf is tp's tracer for pathupdate's spans, or nil when tp is nil:
// tracing is off and the callers skip it whole (no span, no context, no
// allocation).
func TracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(TracerName)
}

// publishSpan starts the span of one publish when tracer is not nil;
// ending it is endPublish's. Its attributes name the stream, never the
// waybill (a subject would).
func publishSpan(ctx context.Context, tracer trace.Tracer) (context.Context, trace.Span) {
	if tracer == nil {
		return ctx, nil
	}
	return tracer.Start(ctx, "publish "+TraceStream, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", TraceStream)))
}

// endPublish ends a publish span (nil: tracing off) with what the
// stream answered.
func endPublish(span trace.Span, seq uint64, duplicate bool, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "publish not acknowledged") // the error names the subject, so the waybill
	} else {
		span.SetAttributes(attribute.Int64("messaging.nats.stream.sequence", int64(seq)), attribute.Bool("pathupdate.duplicate", duplicate))
	}
	span.End()
}
