package pathupdate_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestTraceContextOnHeaders: a traceparent a producer wrote in any case
// is read; what is written is W3C's lower-case header; a malformed or
// missing one is no trace; without a span context nothing is written.
func TestTraceContextOnHeaders(t *testing.T) {
	t.Parallel()
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parent = "00-" + id + "-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		name string
		h    nats.Header
		want string
	}{
		{"lower case", nats.Header{"traceparent": {parent}}, id},
		{"canonical case", nats.Header{"Traceparent": {parent}}, id},
		{"upper case, with state", nats.Header{"TRACEPARENT": {parent}, "tracestate": {"vendor=x"}}, id},
		{"malformed", nats.Header{"traceparent": {"00-nothex-01"}}, ""},
		{"none", nil, ""},
	} {
		ctx := pathupdate.ExtractTrace(context.Background(), tt.h)
		if got := pathupdate.TraceIDOf(ctx); got != tt.want {
			t.Errorf("%s: trace id %q, want %q", tt.name, got, tt.want)
		}
		if tt.want == "" {
			if h := pathupdate.InjectTrace(ctx, nil); h != nil {
				t.Errorf("%s: no trace, yet headers %v written", tt.name, h)
			}
			continue
		}
		h := pathupdate.InjectTrace(ctx, nats.Header{"Nats-Msg-Id": {"x"}})
		if h.Get(pathupdate.TraceParentHeader) != parent || h.Get("Nats-Msg-Id") != "x" {
			t.Errorf("%s: written %v, want traceparent %s beside the other headers", tt.name, h, parent)
		}
		if sc := trace.SpanContextFromContext(ctx); tt.h.Get("tracestate") != "" && sc.TraceState().String() != "vendor=x" {
			t.Errorf("%s: tracestate %q", tt.name, sc.TraceState())
		}
	}
	// Set replaces a value of any case, so one message never carries two.
	h := nats.Header{"Traceparent": {"old"}}
	pathupdate.HeaderCarrier(h).Set("traceparent", parent)
	if len(h) != 1 || h.Get("traceparent") != parent {
		t.Errorf("after Set: %v", h)
	}
}
