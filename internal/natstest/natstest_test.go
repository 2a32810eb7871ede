package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartAndConnect(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	nc, js := natstest.Connect(t, s)
	if !nc.IsConnected() {
		t.Fatalf("connection status %s", nc.Status())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
}

func TestStartCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	servers := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, js := natstest.Connect(t, servers[2])
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
	if err != nil {
		t.Fatalf("create an R3 stream: %v", err)
	}
	if _, err := js.Publish(ctx, "r3.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 || info.State.Msgs != 1 {
		t.Fatalf("stream info: cluster %+v, %d msgs; want a leader and 2 replicas, 1 msg", info.Cluster, info.State.Msgs)
	}

	// Reading through another node sees the same stream.
	_, js0 := natstest.Connect(t, servers[0])
	st0, err := js0.Stream(ctx, "R3")
	if err != nil {
		t.Fatalf("stream through node 1: %v", err)
	}
	m, err := st0.GetLastMsgForSubject(ctx, "r3.a")
	if err != nil || string(m.Data) != "x" {
		t.Fatalf("read through node 1: %v %v", m, err)
	}
}

// TestWorkQueueSettled: a work-queue stream with a message delivered and
// not acked, or not yet delivered, is not settled; once every message is
// acked (and so removed) it is, with nothing left.
func TestWorkQueueSettled(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"wq.a", "wq.b"} {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "WQ", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if ok, left := natstest.WorkQueueSettled(ctx, js, "WQ", nil); ok || left != 2 {
		t.Fatalf("two messages pending: settled %v, left %d; want false, 2", ok, left)
	}
	first, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := natstest.WorkQueueSettled(ctx, js, "WQ", nil); ok {
		t.Fatal("a message delivered and not acked: settled, want not")
	}
	if err := second.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, left := natstest.WorkQueueSettled(ctx, js, "WQ", nil); !ok || left != 0 {
		t.Fatalf("every message acked: settled %v, left %d; want true, 0", ok, left)
	}
}
