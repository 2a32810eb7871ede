package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// quiet is how long a paused deployment is watched for a delivery that
// must not come; an unpaused worker delivers within milliseconds.
const quiet = 500 * time.Millisecond

// noDelivery fails the test if one more event than settled so far is
// settled within quiet.
func noDelivery(t *testing.T, sig *settledSignal, settled int, what string) {
	t.Helper()
	select {
	case <-sig.reached(settled + 1):
		t.Fatalf("%s: an event was delivered while delivery is paused", what)
	case <-time.After(quiet):
	}
}

// until waits, at most timeout, for cond to hold.
func until(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pauseTarget is the pause.Target of the workers b starts.
func (b *bundle) pauseTarget(t *testing.T) pause.Target {
	t.Helper()
	tg, err := pause.TargetOf(context.Background(), b.js, worker.ConsumerDefault)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// checkPaused asserts every consumer of tg exists, is paused as recorded,
// and that pending messages wait in them: n in all.
func checkPaused(t *testing.T, b *bundle, tg pause.Target, n uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := pause.Read(ctx, b.js, tg)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || st.Missing() != 0 || len(st.Disagreeing()) != 0 {
		t.Fatalf("pause state %s: missing %d, disagreeing %+v", st, st.Missing(), st.Disagreeing())
	}
	var pending uint64
	for _, c := range st.Consumers {
		if !c.Paused {
			t.Fatalf("consumer %s not paused", c.Name)
		}
		cons, err := b.js.Consumer(ctx, pathupdate.TraceStream, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		info := cons.CachedInfo()
		if info.NumAckPending != 0 {
			t.Fatalf("consumer %s handed %d messages to a worker while paused", c.Name, info.NumAckPending)
		}
		pending += info.NumPending
	}
	if pending != n {
		t.Fatalf("%d messages pending in the paused consumers, want %d", pending, n)
	}
}

// TestOperatorPause pauses a running worker from outside (as the CLI
// does), publishes while paused, restarts the worker, and resumes: nothing
// is delivered while paused, the pause outlives the worker, and
// everything is delivered in order after the resume.
func TestOperatorPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sandbox.Config{})
	before, during := traces("PB", 6, 2), traces("PD", 6, 3)
	b.register(before)
	b.register(during)
	tg := b.pauseTarget(t)

	sig := &settledSignal{}
	w1 := b.startWorker(t, worker.Config{Observer: sig})
	if w1.OperatorPause().Active(time.Now()) {
		t.Fatal("paused at start")
	}
	b.publishInterleaved(t, before)
	waitFor(t, sig.reached(12), 10*time.Second, "deliveries before the pause")

	if _, err := pause.Pause(ctx, b.js, tg, time.Time{}); err != nil {
		t.Fatal(err)
	}
	until(t, 5*time.Second, "the worker learns of the pause", func() bool { return w1.OperatorPause().Active(time.Now()) })
	b.publishInterleaved(t, during)
	noDelivery(t, sig, 12, "first worker")
	checkPaused(t, b, tg, 18)

	// A restart keeps the pause: the new worker knows it as it starts.
	if err := w1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	w2 := b.startWorker(t, worker.Config{Observer: sig})
	if !w2.OperatorPause().Active(time.Now()) {
		t.Fatal("a worker started during a pause does not know it")
	}
	noDelivery(t, sig, 12, "restarted worker")
	checkPaused(t, b, tg, 18)

	if _, err := pause.Resume(ctx, b.js, tg); err != nil {
		t.Fatal(err)
	}
	b.waitSettled(t, 30*time.Second)
	if dups := b.checkDelivered(t, append(before, during...)); dups != 0 {
		t.Fatalf("%d duplicate deliveries", dups)
	}
	until(t, 5*time.Second, "the worker learns of the resume", func() bool { return !w2.OperatorPause().Active(time.Now()) })
}

// TestPauseBeforeFirstWorker pauses a deployment no worker has run yet
// (no consumer exists): the first worker creates every consumer paused.
func TestPauseBeforeFirstWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sandbox.Config{})
	trs := traces("PF", 5, 2)
	b.register(trs)
	tg := b.pauseTarget(t)
	st, err := pause.Pause(ctx, b.js, tg, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Missing() != tg.Partitions+1 {
		t.Fatalf("%d consumers missing before any worker, want all %d", st.Missing(), tg.Partitions+1)
	}
	b.publishInterleaved(t, trs)
	sig := &settledSignal{}
	b.startWorker(t, worker.Config{Observer: sig})
	noDelivery(t, sig, 0, "worker started after the pause")
	checkPaused(t, b, tg, 10)

	if _, err := pause.Resume(ctx, b.js, tg); err != nil {
		t.Fatal(err)
	}
	b.waitSettled(t, 30*time.Second)
	if dups := b.checkDelivered(t, trs); dups != 0 {
		t.Fatalf("%d duplicate deliveries", dups)
	}
}

// timedSignal is a settledSignal that also keeps when the first event was
// settled.
type timedSignal struct {
	settledSignal
	first chan time.Time
}

func (s *timedSignal) Settled(st worker.Settlement) {
	select {
	case s.first <- st.At:
	default:
	}
	s.settledSignal.Settled(st)
}

// TestPauseUntilEndsByItself: a pause with an end time lifts itself then,
// with no resume, and the worker sees it end.
func TestPauseUntilEndsByItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sandbox.Config{})
	trs := traces("PU", 4, 2)
	b.register(trs)
	sig := &timedSignal{first: make(chan time.Time, 1)}
	w := b.startWorker(t, worker.Config{Observer: sig})
	tg := b.pauseTarget(t)
	end := time.Now().Add(1500 * time.Millisecond)
	if _, err := pause.Pause(ctx, b.js, tg, end); err != nil {
		t.Fatal(err)
	}
	until(t, 5*time.Second, "the worker learns of the pause", func() bool { return w.OperatorPause().Active(time.Now()) })
	b.publishInterleaved(t, trs)
	var first time.Time
	select {
	case first = <-sig.first:
	case <-time.After(20 * time.Second):
		t.Fatal("nothing delivered after the pause's end")
	}
	if first.Before(end) {
		t.Fatalf("first delivery at %s, before the pause's end %s", first.Format(time.StampMilli), end.Format(time.StampMilli))
	}
	b.waitSettled(t, 30*time.Second)
	if dups := b.checkDelivered(t, trs); dups != 0 {
		t.Fatalf("%d duplicate deliveries", dups)
	}
	if w.OperatorPause().Active(time.Now()) {
		t.Fatal("the worker still counts itself paused after the pause's end")
	}
}

// TestOperatorPauseHoldsWhatTheWorkerHas: events the worker already took
// from JetStream wait too when a pause comes; only a call in progress
// finishes.
func TestOperatorPauseHoldsWhatTheWorkerHas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{Latency: sandbox.Duration(50 * time.Millisecond)}})
	trs := traces("PH", 1, 20) // one waybill: one call at a time
	b.register(trs)
	sig := &settledSignal{}
	w := b.startWorker(t, worker.Config{Observer: sig})
	b.publishInterleaved(t, trs)
	waitFor(t, sig.reached(1), 10*time.Second, "first delivery")
	tg := b.pauseTarget(t)
	if _, err := pause.Pause(ctx, b.js, tg, time.Time{}); err != nil {
		t.Fatal(err)
	}
	until(t, 5*time.Second, "the worker learns of the pause", func() bool { return w.OperatorPause().Active(time.Now()) })
	// At most the call in progress when the worker learnt of it settles.
	settled := len(b.sb.Delivered("PH0000"))
	noDelivery(t, sig, settled+1, "held events")
	if w.Stats().Held == 0 {
		t.Fatal("the worker holds nothing: the test proves nothing")
	}
	if _, err := pause.Resume(ctx, b.js, tg); err != nil {
		t.Fatal(err)
	}
	b.waitSettled(t, 30*time.Second)
	if dups := b.checkDelivered(t, trs); dups != 0 {
		t.Fatalf("%d duplicate deliveries", dups)
	}
}
