package worker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// deliveredAPI takes every event; BenchmarkSettleSpans calls it never.
type deliveredAPI struct{}

func (deliveredAPI) UpdatePath(context.Context, pathupdate.Event) pathupdate.Outcome {
	return pathupdate.Outcome{Kind: pathupdate.Delivered}
}

// BenchmarkSettleSpans is what tracing costs one event delivered at the
// first call, spans made, ended and exported: a settle span and an
// updatePath span under it, started and ended as settle does, batched by
// the SDK to an OTLP/HTTP collector in this process that discards them
// (scenario 11 of bench/ without the pipeline around it). The batcher
// blocks instead of dropping a span when its queue is full, so that every
// span is exported inside the timing. The event is a real delivery from an
// embedded server, with the producer's traceparent.
func BenchmarkSettleSpans(b *testing.B) {
	ctx := context.Background()
	s := natstest.Start(b)
	_, js := natstest.Connect(b, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		b.Fatal(err)
	}
	ev := pathupdate.Event{Token: "tok", WaybillID: "BS000001", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "step"}
	m := &nats.Msg{Subject: pathupdate.TraceSubject(ev.WaybillID), Data: ev.Encode(), Header: nats.Header{}}
	m.Header.Set(pathupdate.TraceParentHeader, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		b.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		b.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		b.Fatal(err)
	}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer collector.Close()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(collector.URL+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
	w, err := New(js, deliveredAPI{}, deadletter.NewWriter(js, deadletter.WriterConfig{}), Config{TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	p := w.newPartition(0)
	defer p.cancelCalls()
	defer p.cancelSoft()
	h := &held{msg: keep(msg), seq: 1, subject: m.Subject, waybill: ev.WaybillID}
	o := pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: http.StatusOK}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var a attempt
		a.ctx, a.span = p.startSettle(h)
		a.calls++
		_, span := p.startCall(&a)
		endCall(span, a.calls, o)
		a.outcome, a.result = o, "delivered"
		endSettle(h, &a)
	}
	if err := tp.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}
