package gateway

import (
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// traceRequest puts the request's W3C trace context (traceparent,
// tracestate) into its context, so that every event it publishes carries
// it, and starts the request's span when tracing is on. A request without
// trace context, with tracing off, is returned as it came: no copy.
func (h *Handler) traceRequest(r *http.Request) (*http.Request, trace.Span) {
	ctx := r.Context()
	if r.Header.Get(pathupdate.TraceParentHeader) != "" {
		ctx = pathupdate.ExtractTrace(ctx, nats.Header(r.Header))
	}
	var span trace.Span
	if h.tracer != nil {
		ctx, span = h.tracer.Start(ctx, r.Method+" "+Path, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", Path)))
	}
	if ctx == r.Context() {
		return r, nil
	}
	return r.WithContext(ctx), span
}

// endRequest ends a request's span (nil: tracing off) with its status.
func endRequest(span trace.Span, code int) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", code))
	if code >= 500 {
		span.SetStatus(codes.Error, http.StatusText(code))
	}
	span.End()
}
