package tracing_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }

// The producer's trace: what a service in front of the gateway would send.
const (
	producerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	producerParent  = "00-" + producerTraceID + "-00f067aa0ba902b7-01"
	waybill         = "TRACE0001"
	gatewayToken    = "gateway-test-token-0123456789abcdef"
)

// settledObserver hands every settlement to the test.
type settledObserver struct {
	worker.NopObserver
	settled chan worker.Settlement
}

func (o settledObserver) Settled(s worker.Settlement) { o.settled <- s }

// TestOneTraceFromGatewayToReplay: an event posted to the gateway with a
// traceparent is rejected by WeChat (its order is unknown) and
// dead-lettered; once the order exists it is replayed and delivered. With
// tracing on, the worker's API-call spans of both deliveries, the replay's
// span and the dead letter all belong to the producer's trace, and no span
// names the waybill. With tracing off there are no spans, but the dead
// letter still keeps the producer's trace (a later replay joins it). Either
// way the worker's failure log line carries the trace id.
func TestOneTraceFromGatewayToReplay(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "tracing on", false: "tracing off"}[on]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var tp trace.TracerProvider
			spans := tracetest.NewInMemoryExporter()
			settles := settleSpans{ended: make(chan sdktrace.ReadOnlySpan, 16)}
			if on {
				sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithSpanProcessor(settles))
				defer sdk.Shutdown(context.Background())
				tp = sdk
			}
			oneTrace(t, tp, spans, settles.ended)
		})
	}
}

// settleSpans hands every ended settle span to the test: a settle span
// ends after the worker told the observer, so the test waits for it.
type settleSpans struct {
	ended chan sdktrace.ReadOnlySpan
}

func (s settleSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s settleSpans) Shutdown(context.Context) error                  { return nil }
func (s settleSpans) ForceFlush(context.Context) error                { return nil }
func (s settleSpans) OnEnd(span sdktrace.ReadOnlySpan) {
	if span.Name() == "settle" {
		s.ended <- span
	}
}

func oneTrace(t *testing.T, tp trace.TracerProvider, spans *tracetest.InMemoryExporter, settles <-chan sdktrace.ReadOnlySpan) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{}) // knows no order yet: 40199, rejected
	defer sb.Close()
	var logs natstest.SyncBuffer
	obs := settledObserver{settled: make(chan worker.Settlement, 4)}
	w, err := assemble.Worker(js, assemble.Settings{
		Tokens: pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: sandbox.DefaultAppID, AppSecret: sandbox.DefaultAppSecret}},
		Client: pathupdate.ClientConfig{APIBase: sb.URL},
		Worker: worker.Config{TracerProvider: tp, Observer: obs},
		Logger: zerolog.New(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.NewServer(pub, gateway.Config{Addr: "127.0.0.1:0", Token: gatewayToken, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())
	body := `{"token":"order-token","waybill_id":"` + waybill + `","action_time":1767225600,"action_type":100001,"action_msg":"picked up"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL()+gateway.Path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+gatewayToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", producerParent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway answered %d", resp.StatusCode)
	}

	if st := awaitSettled(ctx, t, obs.settled); st.Reason != deadletter.ReasonRejected {
		t.Fatalf("settled %+v, want dead-lettered as rejected", st)
	}
	store, err := deadletter.NewStore(js, deadletter.StoreConfig{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	var recs []deadletter.Record
	if err := store.List(ctx, deadletter.Filter{Waybill: waybill}, func(r deadletter.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].TraceID() != producerTraceID {
		t.Fatalf("dead letters %+v: want one in trace %s", recs, producerTraceID)
	}
	if !strings.Contains(logs.String(), `"trace_id":"`+producerTraceID+`"`) {
		t.Errorf("no log line carries trace_id %s:\n%s", producerTraceID, logs.String())
	}

	sb.AddOrder(waybill, "order-token")
	if _, err := store.Replay(ctx, deadletter.Filter{Waybill: waybill}, deadletter.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := awaitSettled(ctx, t, obs.settled); !st.Delivered {
		t.Fatalf("the replay settled %+v, want delivered", st)
	}

	if tp != nil {
		// The two settle spans: the rejected delivery's and the replay's.
		want := map[string]string{"dead_lettered: rejected": "40199", "delivered": "0"}
		for range 2 {
			select {
			case s := <-settles:
				attrs := map[string]string{}
				for _, a := range s.Attributes() {
					attrs[string(a.Key)] = a.Value.String()
				}
				res := attrs["pathupdate.result"]
				if code, ok := want[res]; !ok || attrs["pathupdate.errcode"] != code || attrs["pathupdate.attempt"] != "1" || s.SpanContext().TraceID().String() != producerTraceID {
					t.Errorf("settle span %v in trace %s", attrs, s.SpanContext().TraceID())
				}
				delete(want, res)
			case <-ctx.Done():
				t.Fatalf("settle spans %v did not end", want)
			}
		}
	}
	if tp == nil {
		if n := len(spans.GetSpans()); n != 0 {
			t.Errorf("%d spans with tracing off", n)
		}
		return
	}
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = append(byName[s.Name], s)
		if s.SpanContext.TraceID().String() != producerTraceID {
			t.Errorf("span %q is in trace %s, not the producer's", s.Name, s.SpanContext.TraceID())
		}
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), waybill) {
				t.Errorf("span %q names the waybill in %s", s.Name, a.Key)
			}
		}
	}
	results := map[string]bool{}
	for _, c := range byName["updatePath"] {
		for _, a := range c.Attributes {
			if a.Key == "pathupdate.outcome" {
				results[a.Value.AsString()] = true
			}
		}
	}
	if !results["rejected"] || !results["delivered"] {
		t.Errorf("API-call spans %v: want the rejected call and the replay's delivered one", results)
	}
	for _, name := range []string{"POST " + gateway.Path, "publish " + pathupdate.TraceStream, "replay " + pathupdate.TraceStream} {
		if len(byName[name]) != 1 {
			t.Errorf("%d spans %q, want 1 (all: %v)", len(byName[name]), name, keys(byName))
		}
	}
}

func awaitSettled(ctx context.Context, t *testing.T, ch <-chan worker.Settlement) worker.Settlement {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-ctx.Done():
		t.Fatal("the event was not settled in time")
		return worker.Settlement{}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
