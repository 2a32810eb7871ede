package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestChaosKill9 kills worker processes with SIGKILL at random moments
// (seeded), again and again, while events flow with -1 failures, and
// starts a replacement each time. Every event arrives, in order per
// waybill; every duplicate is of an event whose earlier delivery came
// from a worker that was then killed (a call it made and never got to
// acknowledge), never from a worker still alive.
func TestChaosKill9(t *testing.T) {
	t.Parallel()
	r := newRig(t, sandbox.Config{AcceptAnyWaybill: true,
		Faults: sandbox.Faults{SystemErrorRate: 0.1, Latency: sandbox.Duration(20 * time.Millisecond)}}, pathupdate.StreamsConfig{})
	kills := bySize(4, 25)
	trs := makeTraces("K", bySize(150, 1000), bySize(8, 20))
	opts := workerOpts{Concurrency: 8}
	live := []*workerProc{startChaosWorker(t, r.node.URL(), r.sb.URL, opts), startChaosWorker(t, r.node.URL(), r.sb.URL, opts)}
	killed := map[int]bool{}

	ctx, cancel := context.WithTimeout(context.Background(), bySize(3*time.Minute, 15*time.Minute))
	defer cancel()
	r.t0 = time.Now()
	fd := feed(ctx, t, r.js, trs, bySize(800*time.Millisecond, 2*time.Second))
	total := int64(events(trs))
	for k := range kills {
		// Spread over the run: the k-th kill once a k/(kills+1) share is
		// delivered, then a random moment later.
		mark := total * int64(k+1) / int64(kills+1)
		waitUntil(t, fmt.Sprintf("%d delivered before kill %d", mark, k+1), time.Until(deadlineOf(ctx)), func() bool {
			return r.sb.Stats().Delivered >= mark
		})
		if !sleepCtx(ctx, r.rng.between(0, 700*time.Millisecond)) {
			break
		}
		i := r.rng.IntN(len(live))
		victim := live[i]
		victim.kill9(t)
		killed[victim.cmd.Process.Pid] = true
		t.Logf("kill %d: worker pid %d at %d delivered", k+1, victim.cmd.Process.Pid, r.sb.Stats().Delivered)
		// Sometimes the replacement comes at once, sometimes after the
		// survivors took over.
		if r.rng.Float64() < 0.5 {
			sleepCtx(ctx, r.rng.between(0, 4*time.Second))
		}
		live[i] = startChaosWorker(t, r.node.URL(), r.sb.URL, opts)
	}
	fd.wait(t, time.Until(deadlineOf(ctx)))
	waitDrained(ctx, t, r.js, r.sb, trs)

	f := verify(t, "worker kill -9", r.sb, trs, r.t0)
	f.Seed = r.seed
	dls := readDeadLetters(context.Background(), t, r.js)
	f.DeadLettered = len(dls)
	if len(dls) != 0 {
		t.Errorf("%d dead letters (first: %s %q), want none", len(dls), dls[0].Reason, dls[0].ErrMsg)
	}
	fromKilled, fromLive, again := duplicateSources(r.sb, trs, killed)
	f.Notes = fmt.Sprintf("%d kills; duplicates after a delivery by a killed worker %d, by a live one %d", kills, fromKilled+again, fromLive)
	if fromLive > 0 {
		t.Errorf("%d duplicates repeat a delivery made by a worker that was not killed:\n%s", fromLive, explainDuplicates(r.sb, trs, 3))
	}
	if again > 0 {
		t.Errorf("%d duplicates repeat a killed worker a second time on one waybill (a crash may bring back one event per waybill):\n%s", again, explainDuplicates(r.sb, trs, 3))
	}
	for _, w := range live {
		requireHealthy(t, w)
	}
	f.report(t)
	stopAll(t, live...)
}

// duplicateSources sorts duplicate deliveries by who made the earlier
// delivery of the same event: a worker that was killed (the expected
// way to a duplicate) or one that was not. again counts duplicates that
// repeat a killed worker's delivery on a waybill where that worker was
// repeated already: a lane moves on only after its ack is confirmed, so
// a crash can bring back at most one event per waybill (the one between
// its call and its confirmed ack), and again must be 0.
func duplicateSources(sb *sandbox.Server, trs []trace, killed map[int]bool) (fromKilled, fromLive, again int) {
	for _, tr := range trs {
		by := map[string]int{}     // action_msg -> pid of its last delivery
		repeated := map[int]bool{} // killed pids repeated on this waybill
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			if pid, ok := by[c.ActionMsg]; ok {
				switch {
				case !killed[pid]:
					fromLive++
				case repeated[pid]:
					again++
				default:
					fromKilled++
					repeated[pid] = true
				}
			}
			by[c.ActionMsg] = agentPID(c.UserAgent)
		}
	}
	return fromKilled, fromLive, again
}

// TestChaosGracefulHandover adds a worker while calls are in progress
// (its share of the partitions moves from the first) and then stops the
// first with SIGTERM. flow.md promises that a stopping worker lets its
// calls in progress finish and hands back only what it did not settle:
// with nothing killed and no answer lost, no event may be delivered twice.
func TestChaosGracefulHandover(t *testing.T) {
	t.Parallel()
	r := newRig(t, sandbox.Config{AcceptAnyWaybill: true,
		Faults: sandbox.Faults{Latency: sandbox.Duration(300 * time.Millisecond)}}, pathupdate.StreamsConfig{})
	trs := makeTraces("G", bySize(100, 400), bySize(6, 12))
	opts := workerOpts{Concurrency: 16}
	w1 := startChaosWorker(t, r.node.URL(), r.sb.URL, opts)
	ctx, cancel := context.WithTimeout(context.Background(), bySize(2*time.Minute, 6*time.Minute))
	defer cancel()
	r.t0 = time.Now()
	fd := feed(ctx, t, r.js, trs, 200*time.Millisecond)
	total := events(trs)
	waitUntil(t, "a third delivered", time.Minute, func() bool { return r.sb.Stats().Delivered >= int64(total/3) })
	w2 := startChaosWorker(t, r.node.URL(), r.sb.URL, opts)
	waitUntil(t, "two thirds delivered", time.Minute, func() bool { return r.sb.Stats().Delivered >= int64(2*total/3) })
	stopAll(t, w1)
	fd.wait(t, time.Until(deadlineOf(ctx)))
	waitDrained(ctx, t, r.js, r.sb, trs)
	f := verify(t, "graceful handover", r.sb, trs, r.t0)
	f.Seed = r.seed
	f.Notes = "one worker added, then the first stopped with SIGTERM"
	if f.Duplicates != 0 {
		t.Errorf("%d duplicates with no worker killed and no answer lost:\n%s", f.Duplicates, explainDuplicates(r.sb, trs, 3))
	}
	f.report(t)
	requireHealthy(t, w2)
	stopAll(t, w2)
}
