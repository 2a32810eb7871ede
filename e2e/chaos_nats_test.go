package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestChaosNATSRestart shuts the nats-server down while events flow and
// starts it again on the same port and store, more than once. The workers
// reconnect and carry on by themselves; the producer's publishes that
// failed meanwhile are tried again. Every event arrives, in order.
func TestChaosNATSRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, sandbox.Config{AcceptAnyWaybill: true,
		Faults: sandbox.Faults{Latency: sandbox.Duration(10 * time.Millisecond)}}, pathupdate.StreamsConfig{})
	restarts := bySize(2, 8)
	trs := makeTraces("R", bySize(100, 500), bySize(10, 30))
	workers := []*workerProc{
		startChaosWorker(t, r.node.URL(), r.sb.URL, workerOpts{}),
		startChaosWorker(t, r.node.URL(), r.sb.URL, workerOpts{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), bySize(3*time.Minute, 10*time.Minute))
	defer cancel()
	r.t0 = time.Now()
	fd := feed(ctx, t, r.js, trs, bySize(500*time.Millisecond, time.Second))
	var downFor []time.Duration
	total := int64(events(trs))
	for i := range restarts {
		mark := total * int64(i+1) / int64(restarts+2)
		waitUntil(t, fmt.Sprintf("%d delivered before restart %d", mark, i+1), time.Until(deadlineOf(ctx)), func() bool {
			return r.sb.Stats().Delivered >= mark
		})
		if !sleepCtx(ctx, r.rng.between(0, time.Second)) {
			break
		}
		down := r.rng.between(200*time.Millisecond, 3*time.Second)
		at := r.sb.Stats().Delivered
		r.node.Stop()
		sleepCtx(ctx, down)
		r.node.Restart()
		downFor = append(downFor, down.Round(10*time.Millisecond))
		t.Logf("restart %d: down %s at %d delivered", i+1, down.Round(10*time.Millisecond), at)
	}
	fd.wait(t, time.Until(deadlineOf(ctx)))
	waitDrained(ctx, t, r.js, r.sb, trs)

	f := verify(t, "nats-server restart", r.sb, trs, r.t0)
	f.Seed = r.seed
	dls := readDeadLetters(context.Background(), t, r.js)
	f.DeadLettered = len(dls)
	if len(dls) != 0 {
		t.Errorf("%d dead letters (first: %s %q), want none", len(dls), dls[0].Reason, dls[0].ErrMsg)
	}
	f.Notes = fmt.Sprintf("%d restarts, down %v; %d publish attempts failed and were retried", len(downFor), downFor, fd.failures.Load())
	if kept, _ := leftInStream(r.js); kept > 0 {
		f.Notes += fmt.Sprintf("; the server kept %d acked events in the work-queue stream (streamSettled)", kept)
	}
	for _, w := range workers {
		requireHealthy(t, w)
	}
	f.report(t)
	stopAll(t, workers...)
}

// TestChaosClusterNodeLoss runs two workers on a 3-node cluster with R3
// streams and stops a node while events flow, the trace stream's leader
// first, then (long mode) others at random, each restarted later. Every
// event arrives, in order, none is dead-lettered.
func TestChaosClusterNodeLoss(t *testing.T) {
	t.Parallel()
	c := natstest.NewCluster(t, 3)
	seed := chaosSeed(t)
	rng := newLockedRand(seed)
	_, js := connectTCP(t, c.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), bySize(4*time.Minute, 15*time.Minute))
	defer cancel()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Seed: int64(seed & (1<<62 - 1)),
		Faults: sandbox.Faults{SystemErrorRate: 0.05, Latency: sandbox.Duration(10 * time.Millisecond)}})
	t.Cleanup(sb.Close)
	opts := workerOpts{Extra: []string{"--replicas", "3"}}
	workers := []*workerProc{startChaosWorker(t, c.URLs(), sb.URL, opts), startChaosWorker(t, c.URLs(), sb.URL, opts)}

	losses := bySize(1, 5)
	trs := makeTraces("N", bySize(100, 500), bySize(8, 20))
	t0 := time.Now()
	fd := feed(ctx, t, js, trs, bySize(time.Second, 2*time.Second))
	var lost []string
	total := int64(events(trs))
	for i := range losses {
		// Each loss while events are being delivered.
		mark := total * int64(i+1) / int64(losses+2)
		waitUntil(t, fmt.Sprintf("%d delivered before node loss %d", mark, i+1), time.Until(deadlineOf(ctx)), func() bool {
			return sb.Stats().Delivered >= mark
		})
		victim := rng.IntN(len(c.Servers))
		if i == 0 {
			victim = traceLeader(ctx, t, js, c)
		}
		name := fmt.Sprintf("n%d", victim+1)
		at := sb.Stats().Delivered
		c.Stop(victim)
		lost = append(lost, name)
		t.Logf("node loss %d: %s stopped at %d delivered", i+1, name, at)
		sleepCtx(ctx, rng.between(2*time.Second, 6*time.Second))
		c.Restart(victim)
		natstest.WaitClusterReady(t, c.Servers)
	}
	fd.wait(t, time.Until(deadlineOf(ctx)))
	waitDrained(ctx, t, js, sb, trs)

	f := verify(t, "cluster node loss", sb, trs, t0)
	f.Seed = seed
	dls := readDeadLetters(context.Background(), t, js)
	f.DeadLettered = len(dls)
	if len(dls) != 0 {
		t.Errorf("%d dead letters (first: %s %q), want none", len(dls), dls[0].Reason, dls[0].ErrMsg)
	}
	f.Notes = fmt.Sprintf("3 nodes, R3; stopped and restarted %v (the first: the trace stream's leader); %d publish attempts retried", lost, fd.failures.Load())
	for _, w := range workers {
		requireHealthy(t, w)
	}
	f.report(t)
	stopAll(t, workers...)
}

// traceLeader is the index of the node leading the trace stream.
func traceLeader(ctx context.Context, t *testing.T, js jetstream.JetStream, c *natstest.Cluster) int {
	t.Helper()
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(c.Servers))
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
	}
	if info.Cluster == nil || !slices.Contains(names, info.Cluster.Leader) {
		t.Fatalf("trace stream has no known leader: %+v", info.Cluster)
	}
	return slices.Index(names, info.Cluster.Leader)
}
