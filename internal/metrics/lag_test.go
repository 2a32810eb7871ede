package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// TestJetStreamLag reads real consumer info: per-partition pending counts
// that match where the stream stored the events, ack pending after a fetch
// without ack, a consumer over the whole stream as "all", and a consumer
// that does not exist left out without error.
func TestJetStreamLag(t *testing.T) {
	t.Parallel()
	const partitions = 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		if _, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{
			Durable: worker.ConsumerName("lag", p), FilterSubject: pathupdate.PartitionFilter(p), AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const events = 40
	for i := range events {
		ev := pathupdate.Event{Token: "t", WaybillID: fmt.Sprintf("LAG%03d", i%13), ActionTime: int64(1_767_225_600 + i),
			ActionType: pathupdate.ActionInTransit, ActionMsg: fmt.Sprintf("m%d", i)}
		if _, err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Where the stream put them: "<p>.logistics.trace.<waybill>".
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		p, _, _ := strings.Cut(subj, ".")
		want[p] += n
	}

	names := append(metrics.PartitionConsumers("lag", partitions)(), "never-created")
	read := metrics.JetStreamLag(js, pathupdate.TraceStream, func() []string { return names })
	// The server updates a consumer's num_pending after the PubAck, not
	// before it: poll until the read shows every event.
	got := readUntil(t, read, func(got map[string]metrics.ConsumerLag) bool {
		for p := range partitions {
			if l := fmt.Sprint(p); got[l].Pending != want[l] || got[l].AckPending != 0 {
				return false
			}
		}
		return len(got) == partitions
	})
	var total uint64
	for _, l := range got {
		total += l.Pending
	}
	if total != events {
		t.Errorf("lag %v: want %d pending in all", got, events)
	}

	// Take two messages of partition 0 without acking them.
	var p0 string
	for p := range want {
		if want[p] >= 2 {
			p0 = p
			break
		}
	}
	var n int
	fmt.Sscan(p0, &n)
	c, err := js.Consumer(ctx, pathupdate.TraceStream, worker.ConsumerName("lag", n))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for range batch.Messages() {
		taken++
	}
	if taken != 2 {
		t.Fatalf("fetched %d messages, want 2", taken)
	}
	readUntil(t, read, func(got map[string]metrics.ConsumerLag) bool {
		return got[p0].Pending == want[p0]-2 && got[p0].AckPending == 2
	})
}

// readUntil reads lag until cond holds, failing after 10 s with the last
// read. Polling: JetStream offers no event for consumer counts.
func readUntil(t *testing.T, read metrics.LagFunc, cond func(map[string]metrics.ConsumerLag) bool) map[string]metrics.ConsumerLag {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("JetStreamLag: %v", err)
		}
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer lag %v: not the expected counts after 10s", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJetStreamLagUnfiltered: a consumer over a whole stream is "all".
func TestJetStreamLagUnfiltered(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "PLAIN", jetstream.ConsumerConfig{Durable: "everything", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, fmt.Sprintf("plain.%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	read := metrics.JetStreamLag(js, "PLAIN", func() []string { return []string{"everything"} })
	readUntil(t, read, func(got map[string]metrics.ConsumerLag) bool { return len(got) == 1 && got["all"].Pending == 3 })
}

// TestJetStreamLagServerGone: with the server shut down the read fails
// within the caller's deadline and names the consumer.
func TestJetStreamLagServerGone(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	read := metrics.JetStreamLag(js, pathupdate.TraceStream, metrics.PartitionConsumers("gone", 2))
	rctx, rcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer rcancel()
	start := time.Now()
	_, err := read(rctx)
	if err == nil || !strings.Contains(err.Error(), "gone-p0") {
		t.Fatalf("read with the server down: %v, want an error naming consumer gone-p0", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("read took %s past a 500ms deadline", took)
	}
}
