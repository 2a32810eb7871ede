package pathupdate

import (
	"errors"
	"strings"
	"testing"
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
