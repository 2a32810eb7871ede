package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// TestPublishBatch: a refused event holds back the later events of its
// waybill, or with HaltOnFailure every event not yet published; Check
// fails an event without publishing it; an invalid event is refused; the
// outcomes come back in the order given.
func TestPublishBatch(t *testing.T) {
	t.Parallel()
	long := publisherTestEvent("W1", 2)
	long.ActionMsg = strings.Repeat("x", 400) // over the stream's MaxMsgSize: refused
	items := []BatchItem{
		{Event: long},
		{Event: publisherTestEvent("W1", 3)},
		{Event: publisherTestEvent("W2", 1), MsgID: "given-id"},
		{Event: Event{WaybillID: "W3"}}, // invalid
		{Event: publisherTestEvent("W1", 4)},
	}
	errDown := errors.New("down")
	for _, tt := range []struct {
		name string
		cfg  BatchConfig
		// per item: "" stored, "refused", "held", "invalid", "down"
		want []string
	}{
		// One publish in flight at a time: the refusal (the first
		// waybill's first event) is settled before W2's event goes.
		{"per waybill", BatchConfig{MaxPending: 1}, []string{"refused", "held", "", "invalid", "held"}},
		{"halt", BatchConfig{MaxPending: 1, HaltOnFailure: true}, []string{"refused", "held", "held", "invalid", "held"}},
		{"check", BatchConfig{Check: func() error { return errDown }}, []string{"down", "held", "down", "invalid", "held"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js, p := smallMsgSetup(t)
			out := p.PublishBatch(jsTestCtx(t), items, tt.cfg)
			if len(out) != len(items) {
				t.Fatalf("%d outcomes for %d items", len(out), len(items))
			}
			stored := 0
			for i, o := range out {
				var got string
				switch err := o.Err; {
				case err == nil:
					stored++
					if o.Seq == 0 {
						t.Errorf("item %d stored without a sequence", i)
					}
				case errors.Is(err, ErrHeldBack):
					got = "held"
				case errors.Is(err, ErrInvalidEvent):
					got = "invalid"
				case errors.Is(err, errDown):
					got = "down"
				default:
					got = "refused"
				}
				if got != tt.want[i] {
					t.Errorf("item %d: %q (%v), want %q", i, got, o.Err, tt.want[i])
				}
			}
			if out[2].MsgID != "given-id" || out[0].MsgID != items[0].Event.ID() {
				t.Errorf("msg ids %q and %q, want the given one and the content id", out[2].MsgID, out[0].MsgID)
			}
			if n := traceMsgs(t, js); n != uint64(stored) {
				t.Errorf("stream holds %d, %d were stored", n, stored)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		_, p := publisherSetup(t, PublisherConfig{})
		if out := p.PublishBatch(jsTestCtx(t), nil, BatchConfig{}); len(out) != 0 {
			t.Fatalf("%d outcomes for no items", len(out))
		}
	})
}

// smallMsgSetup is a server whose trace stream refuses a message over
// 300 bytes (a way to make a publish fail), and a Publisher on it.
func smallMsgSetup(t *testing.T) (jetstream.JetStream, *Publisher) {
	t.Helper()
	_, js := startJetStreamForTopology(t)
	cfg := traceStreamConfig(StreamsConfig{}.WithDefaults())
	cfg.MaxMsgSize = 300
	if _, err := js.CreateStream(jsTestCtx(t), cfg); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(js, PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return js, p
}

// TestPublishBatchCheckFailsLast: Check fails the last events left, after
// every other was settled and the input was taken whole. PublishBatch
// returns (the pipeline used to wait for a PubAck that nothing would
// send: nothing was in flight any more).
func TestPublishBatchCheckFailsLast(t *testing.T) {
	t.Parallel()
	_, p := publisherSetup(t, PublisherConfig{})
	items := []BatchItem{{Event: publisherTestEvent("W1", 1)}, {Event: publisherTestEvent("W2", 1)}, {Event: publisherTestEvent("W3", 1)}}
	errDown := errors.New("down")
	checks := 0 // Check runs on the pipeline's goroutine only
	cfg := BatchConfig{MaxPending: 1, HaltOnFailure: true, Check: func() error {
		if checks++; checks > 1 {
			return errDown
		}
		return nil
	}}
	done := make(chan []BatchOutcome, 1)
	go func() { done <- p.PublishBatch(jsTestCtx(t), items, cfg) }()
	select {
	case out := <-done:
		if out[0].Err != nil || !errors.Is(out[1].Err, errDown) || !errors.Is(out[2].Err, ErrHeldBack) {
			t.Fatalf("outcomes %+v: want stored, down, held back", out)
		}
	case <-jsTestCtx(t).Done():
		t.Fatal("PublishBatch did not return once every event was settled")
	}
}

// TestPublishOrdered: messages go as given (bytes, header, the trace
// context of Span's context), one waybill's in order; Settled gets each
// back with its Ref once, a refusal with nats.go's error as it is, and a
// message for no valid waybill unpublished.
func TestPublishOrdered(t *testing.T) {
	t.Parallel()
	js, p := smallMsgSetup(t)
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	msgs := []OrderedMsg{
		{Waybill: "W1", MsgID: "m1", Data: []byte("as is, not an event")},
		{Waybill: "W1", MsgID: "m2", Data: []byte(strings.Repeat("x", 400))}, // over MaxMsgSize: refused
		{Waybill: "W1", MsgID: "m3", Data: []byte("held back")},
		{Waybill: "a.b", MsgID: "m4", Data: []byte("no waybill")},
		{Waybill: "W2", MsgID: "m5", Data: []byte("{}")},
	}
	got := map[int]string{}
	err := p.PublishOrdered(jsTestCtx(t), OrderedConfig{
		MaxPending: 1,
		Span: func(m OrderedMsg) (context.Context, trace.Span) {
			h := nats.Header{}
			h.Set(TraceParentHeader, parent)
			return ExtractTrace(context.Background(), h), nil
		},
		Settled: func(m OrderedMsg, ack *jetstream.PubAck, err error) {
			i := m.Ref.(int)
			if _, dup := got[i]; dup {
				t.Errorf("message %d settled twice", i)
			}
			switch {
			case err == nil && ack != nil:
				got[i] = "stored"
			case errors.Is(err, ErrHeldBack):
				got[i] = "held"
			case errors.Is(err, ErrInvalidEvent):
				got[i] = "invalid"
			case err != nil && !strings.HasPrefix(err.Error(), "publish to"):
				got[i] = "refused"
			default:
				got[i] = fmt.Sprintf("%v, %v", ack, err)
			}
		},
	}, func(publish func(OrderedMsg)) error {
		for i, m := range msgs {
			m.Header = nats.Header{"Pathupdate-Test": []string{strconv.Itoa(i)}}
			m.Ref = i
			publish(m)
		}
		return errors.New("fed")
	})
	if err == nil || err.Error() != "fed" {
		t.Fatalf("PublishOrdered returned %v, want feed's error", err)
	}
	if want := map[int]string{0: "stored", 1: "refused", 2: "held", 3: "invalid", 4: "stored"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("settled %v, want %v", got, want)
	}
	st, err := js.Stream(jsTestCtx(t), TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq, want := range map[uint64]int{1: 0, 2: 4} {
		m, err := st.GetMsg(jsTestCtx(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != string(msgs[want].Data) || m.Header.Get("Pathupdate-Test") != strconv.Itoa(want) ||
			m.Header.Get(jetstream.MsgIDHeader) != msgs[want].MsgID || m.Header.Get(TraceParentHeader) != parent {
			t.Errorf("seq %d: %q %v, want message %d with its header and the trace context", seq, m.Data, m.Header, want)
		}
	}
}
