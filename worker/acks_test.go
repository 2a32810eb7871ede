package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
)

// TestAckConfirmer: an ack is confirmed once the server took it (nothing
// is pending after), the same ack asked again is confirmed too (a retry
// after a lost confirmation), an ack nobody can take fails at once, and
// one nobody answers ends with its timeout or its context.
func TestAckConfirmer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js := natstest.Connect(t, natstest.Start(t))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ACKS", Subjects: []string{"acks.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "ACKS", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"acks.a", "acks.b"} {
		if _, err := js.Publish(ctx, s, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := cons.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("fetched %d messages, want 2 (%v)", len(msgs), batch.Error())
	}
	a, err := newAckConfirmer(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	seqOf := func(m jetstream.Msg) uint64 {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		return md.Sequence.Stream
	}

	if err := a.ack(ctx, msgs[0].Reply(), seqOf(msgs[0]), 5*time.Second); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := a.ack(ctx, msgs[0].Reply(), seqOf(msgs[0]), 5*time.Second); err != nil {
		t.Fatalf("the same ack again: %v", err)
	}
	if err := a.ack(ctx, msgs[1].Reply(), seqOf(msgs[1]), 5*time.Second); err != nil {
		t.Fatalf("ack of the second: %v", err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 {
		t.Fatalf("after the confirmed acks: %+v, %v; want nothing pending", info, err)
	}

	// Nobody subscribes to this subject: the server says so at once.
	start := time.Now()
	if err := a.ack(ctx, "acks-nobody", 7, 5*time.Second); !errors.Is(err, errAckNoResponders) {
		t.Fatalf("ack nobody takes: %v, want errAckNoResponders", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("the refused ack took %s: it waited for its timeout", d)
	}

	// Someone takes this one and never answers.
	sub, err := nc.SubscribeSync("acks-silent")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := a.ack(ctx, "acks-silent", 8, 50*time.Millisecond); !errors.Is(err, errAckTimeout) {
		t.Fatalf("unanswered ack: %v, want errAckTimeout", err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if err := a.ack(cctx, "acks-silent", 9, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("unanswered ack, context cancelled: %v, want context.Canceled", err)
	}
	// A confirmation after its wait ended finds no one waiting, and one
	// for a sequence nobody acked is ignored.
	for _, s := range []string{"8", "9", "nonsense"} {
		if err := nc.Publish(a.prefix+s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	left := len(a.waiting)
	a.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d acks still waiting", left)
	}
}
