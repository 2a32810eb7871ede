package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestClusterNodeLossLosesNothing runs two workers on a 3-node cluster
// with R3 streams; one node is stopped mid-run and restarted later. Every
// event arrives, in order per waybill.
func TestClusterNodeLossLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := natstest.NewCluster(t, 3)
	connect := func() jetstream.JetStream {
		nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	js := connect()
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	b := setupWith(t, js, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.1, Latency: sandbox.Duration(2 * time.Millisecond)}})
	trs := traces("CLU", 300, 10)
	b.register(trs)
	b.publishInterleaved(t, trs)

	// Each worker on its own connection, as separate processes would be.
	settled := &settledSignal{} // counts both workers' settlements
	w1 := (&bundle{js: connect(), sb: b.sb, pub: b.pub, api: b.api}).startWorker(t, worker.Config{Concurrency: 8, Observer: settled})
	(&bundle{js: connect(), sb: b.sb, pub: b.pub, api: b.api}).startWorker(t, worker.Config{Concurrency: 8, Observer: settled})

	waitFor(t, settled.reached(600), 2*time.Minute, "600 events settled")
	c.Stop(1)
	waitFor(t, settled.reached(1800), 2*time.Minute, "1,800 events settled")
	c.Restart(1)
	natstest.WaitClusterReady(t, c.Servers)
	b.waitSettledOr(t, 2*time.Minute, func() string { return c.Describe(pathupdate.TraceStream) })
	t.Logf("after the drain:\n%s", c.Describe(pathupdate.TraceStream))
	dups := b.checkDelivered(t, trs)
	t.Logf("3,000 events over a node loss: %d duplicate deliveries; worker 1: %+v", dups, w1.Stats())
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none", len(dl))
	}
}
