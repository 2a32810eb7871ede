package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// endedSpans hands every ended span to the test: a settle span ends after
// the worker told the observer, so the test waits for the spans instead.
type endedSpans chan sdktrace.ReadOnlySpan

func (e endedSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (e endedSpans) OnEnd(s sdktrace.ReadOnlySpan)                   { e <- s }
func (e endedSpans) Shutdown(context.Context) error                  { return nil }
func (e endedSpans) ForceFlush(context.Context) error                { return nil }

// TestSpansOfSettledEvents: with a TracerProvider, each event gets a
// settle span (consumer) in the trace of its message's traceparent, with
// one updatePath span (client) under it per API call, each with every
// attribute of its outcome; a failure's spans are errors; the dead letter
// keeps the settle span's trace context.
func TestSpansOfSettledEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{})
	ended := make(endedSpans, 8)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(ended))
	defer tp.Shutdown(context.Background())

	// Seq 1 is delivered (its order exists), seq 2 rejected (no order).
	evs := []pathupdate.Event{
		{Token: "tok-ok", WaybillID: "SPAN0001", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "in transit"},
		{Token: "tok-no", WaybillID: "SPAN0002", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "in transit"},
	}
	b.sb.AddOrder(evs[0].WaybillID, evs[0].Token)
	producers := make([]trace.SpanContext, len(evs))
	for i, ev := range evs {
		producers[i] = trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{0x4b, byte(i + 1)}, SpanID: trace.SpanID{0x0f, byte(i + 1)}, TraceFlags: trace.FlagsSampled, Remote: true,
		})
		if _, err := b.pub.Publish(trace.ContextWithRemoteSpanContext(context.Background(), producers[i]), ev); err != nil {
			t.Fatal(err)
		}
	}
	b.startWorker(t, worker.Config{TracerProvider: tp})

	byName := map[string][]sdktrace.ReadOnlySpan{}
	timeout := time.After(30 * time.Second)
	for len(byName["settle"]) < len(evs) {
		select {
		case s := <-ended:
			byName[s.Name()] = append(byName[s.Name()], s)
		case <-timeout:
			t.Fatalf("spans ended: %v", byName)
		}
	}
	if n := len(byName["updatePath"]); n != len(evs) {
		t.Fatalf("%d updatePath spans, want one per event", n)
	}
	want := []struct {
		settle, call map[string]string
		status       codes.Code
	}{{
		settle: map[string]string{"messaging.system": "nats", "messaging.destination.name": pathupdate.TraceStream,
			"messaging.nats.stream.sequence": "1", "pathupdate.attempt": "1", "pathupdate.result": "delivered",
			"pathupdate.outcome": "delivered", "pathupdate.errcode": "0", "http.response.status_code": "200"},
		call: map[string]string{"pathupdate.attempt": "1", "pathupdate.outcome": "delivered", "pathupdate.errcode": "0",
			"http.response.status_code": "200"},
		status: codes.Unset,
	}, {
		settle: map[string]string{"messaging.system": "nats", "messaging.destination.name": pathupdate.TraceStream,
			"messaging.nats.stream.sequence": "2", "pathupdate.attempt": "1", "pathupdate.result": "dead_lettered: rejected",
			"pathupdate.outcome": "rejected", "pathupdate.errcode": "40199", "http.response.status_code": "200"},
		call: map[string]string{"pathupdate.attempt": "1", "pathupdate.outcome": "rejected", "pathupdate.errcode": "40199",
			"http.response.status_code": "200"},
		status: codes.Error,
	}}
	for i, w := range want {
		settle := spanIn(t, byName["settle"], producers[i].TraceID())
		call := spanIn(t, byName["updatePath"], producers[i].TraceID())
		if settle.SpanKind() != trace.SpanKindConsumer || settle.Parent().SpanID() != producers[i].SpanID() {
			t.Errorf("event %d: settle span %v under %v, want a consumer span under the producer's %v", i, settle.SpanKind(), settle.Parent().SpanID(), producers[i].SpanID())
		}
		if call.SpanKind() != trace.SpanKindClient || call.Parent().SpanID() != settle.SpanContext().SpanID() {
			t.Errorf("event %d: updatePath span %v under %v, want a client span under the settle span", i, call.SpanKind(), call.Parent().SpanID())
		}
		for _, s := range []struct {
			span sdktrace.ReadOnlySpan
			want map[string]string
		}{{settle, w.settle}, {call, w.call}} {
			if got := attrs(s.span); fmt.Sprint(got) != fmt.Sprint(s.want) {
				t.Errorf("event %d: %s attributes\n %v, want\n %v", i, s.span.Name(), got, s.want)
			}
			if s.span.Status().Code != w.status {
				t.Errorf("event %d: %s status %v, want %v", i, s.span.Name(), s.span.Status(), w.status)
			}
		}
	}

	dls := b.deadLetters(t)
	rejected := spanIn(t, byName["settle"], producers[1].TraceID()).SpanContext()
	if len(dls) != 1 || dls[0].TraceParent != fmt.Sprintf("00-%s-%s-01", rejected.TraceID(), rejected.SpanID()) {
		t.Errorf("dead letters %+v: want one with the settle span's traceparent", dls)
	}
}

// spanIn is the one span of spans in trace id.
func spanIn(t *testing.T, spans []sdktrace.ReadOnlySpan, id trace.TraceID) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == id {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans in trace %s, want 1", len(found), id)
	}
	return found[0]
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes() {
		m[string(a.Key)] = a.Value.String()
	}
	return m
}
