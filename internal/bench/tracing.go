package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// runTracingDrain is scenario 11: scenario 2's drain (instant API) with
// tracing off (no TracerProvider, as without OTEL_EXPORTER_OTLP_ENDPOINT)
// and on (the SDK exporting every span over OTLP/HTTP to a collector in
// this process that discards them), alternating, in the same run. The
// cost of tracing is 1 - on/off.
func (r *runner) runTracingDrain(ctx context.Context) (Result, error) {
	spans := &spanCounts{}
	rates, n, err := r.drainOnOff(ctx, "11 tracing", func(o *Options, on bool) { o.Tracing, o.spans = on, spans })
	if err != nil {
		return Result{}, err
	}
	o := r.opts
	on, off := median(rates["on"]), median(rates["off"])
	return Result{
		ID: 11, Name: "tracing cost, pipeline (scenario 2 with OTLP tracing on)", Unit: "ev/s",
		Ours: on, Reference: off, RefName: "the same with tracing off",
		Ratio: ratio(on, off), Target: ">= 0.80", Met: met(ratio(on, off) >= 0.8),
		Details: map[string]any{"events": n, "reps": o.Reps, "rates": rates,
			"spans_exported": spans.exported.Load(), "export_requests": spans.requests.Load()},
	}, nil
}

// spanCounts are what the collector of scenario 11 received.
type spanCounts struct {
	exported atomic.Int64 // spans handed to the OTLP exporter
	requests atomic.Int64 // OTLP requests the collector answered
}

// countingExporter counts the spans it hands to the OTLP exporter.
type countingExporter struct {
	sdktrace.SpanExporter
	n *atomic.Int64
}

func (c countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.n.Add(int64(len(spans)))
	return c.SpanExporter.ExportSpans(ctx, spans)
}

// tracing is a TracerProvider exporting over OTLP/HTTP, with the SDK's
// defaults (batching), to a local collector that reads and discards each
// request; stop flushes the last spans and closes both.
func startTracing(ctx context.Context, counts *spanCounts) (*sdktrace.TracerProvider, func(), error) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		counts.requests.Add(1)
	}))
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(collector.URL+"/v1/traces"))
	if err != nil {
		collector.Close()
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(countingExporter{SpanExporter: exp, n: &counts.exported}))
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
		collector.Close()
	}, nil
}
