package worker_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestPinMovedHandsBack: when JetStream advises that a partition's pin went
// to another client while this worker holds messages of it (what a new
// consumer leader does after a node loss), the worker stops delivering them
// and hands them back, instead of calling WeChat beside the new holder.
// Here the advisory names a client that does not exist, so the worker takes
// the partitions again and delivers everything, in order.
func TestPinMovedHandsBack(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{Latency: sandbox.Duration(100 * time.Millisecond)}})
	trs := traces("PIN", 12, 3)
	b.register(trs)
	b.publishInterleaved(t, trs)
	w := b.startWorker(t, worker.Config{Concurrency: 1})
	// Every event held: one call at a time at 100 ms leaves the rest waiting.
	until(t, 10*time.Second, "every event received", func() bool { return w.Stats().Received == 36 })

	adv, err := json.Marshal(map[string]string{"group": worker.PriorityGroup, "pinned_id": "another-client"})
	if err != nil {
		t.Fatal(err)
	}
	nc := b.js.Conn()
	for n := range pathupdate.DefaultPartitions {
		subject := "$JS.EVENT.ADVISORY.CONSUMER.PINNED." + pathupdate.TraceStream + "." + worker.ConsumerName(worker.ConsumerDefault, n)
		if err := nc.Publish(subject, adv); err != nil {
			t.Fatal(err)
		}
	}
	until(t, 15*time.Second, "a partition released for its lost pin, its messages handed back", func() bool {
		st := w.Stats()
		return st.PinsLost > 0 && st.HandedBack > 0
	})
	b.waitSettled(t, time.Minute)
	b.checkDelivered(t, trs)
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none", len(dl))
	}
}
