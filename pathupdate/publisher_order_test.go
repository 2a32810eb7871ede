package pathupdate

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishLinesHoldsBackAWaybillAfterAFailure: when the stream refuses
// one line of a waybill, PublishLines must not publish that waybill's
// later lines. Found by the chaos suite (trace stream full while a worker
// drained it): the later lines were stored, and publishing the input
// again, as `pathupdate publish` advises, then put the refused event
// after them, so WeChat got the waybill's trace out of order. Now the
// later lines count as Failed (ErrHeldBack) and a second run stores the
// waybill's events in input order; other waybills are not held up.
func TestPublishLinesHoldsBackAWaybillAfterAFailure(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	// The trace stream as EnsureStreams makes it, but refusing messages
	// over 300 bytes: a deterministic refusal of one line.
	cfg := traceStreamConfig(StreamsConfig{}.WithDefaults())
	cfg.MaxMsgSize = 300
	st, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(js, PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	long := publisherTestEvent("W1", 2)
	long.ActionMsg = strings.Repeat("x", 400)
	input := [][]byte{
		publisherTestEvent("W1", 1).Encode(),
		long.Encode(), // refused: too big
		publisherTestEvent("W2", 1).Encode(),
		publisherTestEvent("W1", 3).Encode(), // held back
		publisherTestEvent("W2", 2).Encode(),
		publisherTestEvent("W1", 4).Encode(), // held back
	}
	in := string(append(joinLines(input), '\n'))

	sum, err := p.PublishLines(ctx, strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 3 || sum.Failed != 3 || sum.Duplicates != 0 || sum.Invalid != 0 {
		t.Fatalf("summary %+v, want 3 accepted (W1 line 1, W2 lines 3 and 5) and 3 failed", sum)
	}
	for i, want := range []int{2, 4, 6} {
		le := sum.Errors[i]
		if le.Line != want {
			t.Fatalf("error %d is for line %d, want line %d: %v", i, le.Line, want, le)
		}
		if heldBack := errors.Is(le, ErrHeldBack); heldBack != (want != 2) {
			t.Errorf("line %d: %v; held back: %v", le.Line, le.Err, heldBack)
		}
	}
	if got := storedActionMsgs(t, st, "W1"); strings.Join(got, "|") != publisherTestEvent("W1", 1).ActionMsg {
		t.Fatalf("W1 in the stream after the first run: %q, want only its first event", got)
	}

	// The cause goes away; the same input again stores the rest in order.
	cfg.MaxMsgSize = -1
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	sum, err = p.PublishLines(ctx, strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 3 || sum.Duplicates != 3 || sum.Failed != 0 {
		t.Fatalf("second run: %+v, want 3 accepted and 3 duplicates", sum)
	}
	want := []string{publisherTestEvent("W1", 1).ActionMsg, long.ActionMsg, publisherTestEvent("W1", 3).ActionMsg, publisherTestEvent("W1", 4).ActionMsg}
	if got := storedActionMsgs(t, st, "W1"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("W1 in the stream after the second run: %q, want %q", got, want)
	}
}

func joinLines(lines [][]byte) []byte {
	var b []byte
	for i, l := range lines {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, l...)
	}
	return b
}

// storedActionMsgs lists the action_msg of waybill's events in the stream,
// in stream order.
func storedActionMsgs(t *testing.T, st jetstream.Stream, waybill string) []string {
	t.Helper()
	info, err := st.Info(jsTestCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(jsTestCtx(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := DecodeEvent(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.WaybillID == waybill {
			out = append(out, ev.ActionMsg)
		}
	}
	return out
}

// TestPublishLinesPublishesWhatArrivedBeforeWaiting: a producer piping
// events in as they happen must see each published before the next
// arrives; PublishLines hands decoded lines over in batches, and must not
// hold a part-filled batch while it waits for more input.
func TestPublishLinesPublishesWhatArrivedBeforeWaiting(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	ctx := jsTestCtx(t)
	pr, pw := io.Pipe()
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := p.PublishLines(ctx, pr, nil)
		done <- result{sum, err}
	}()
	// Each stored message reaches this consumer as it is stored: the test
	// waits on that, not on time (it never acks, so nothing is removed).
	cons, err := js.CreateConsumer(ctx, TraceStream, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev := publisherTestEvent("W", i)
		if _, err := pw.Write(append(ev.Encode(), '\n')); err != nil {
			t.Fatal(err)
		}
		// The pipe stays open: the event must reach the stream anyway.
		m, err := cons.Next(jetstream.FetchMaxWait(time.Minute))
		if err != nil {
			t.Fatalf("event %d not in the stream within a minute while the input stays open: %v", i, err)
		}
		if !bytes.Equal(m.Data(), ev.Encode()) {
			t.Fatalf("stream message %d is %s, want %s", i, m.Data(), ev.Encode())
		}
	}
	pw.Close()
	r := <-done
	if r.err != nil || r.sum.Accepted != 3 {
		t.Fatalf("summary %+v, err %v: want 3 accepted", r.sum, r.err)
	}
}
