package worker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestBusyLaneKeepsItsSlot: with one call slot, a waybill with many events
// waiting keeps the slot from one delivery to its next instead of handing
// it to a lane with one event each time it acks (which made it alternate
// with them, and a hot waybill's trace take twice as long). The
// single-event waybills still all get delivered, in order and once.
func TestBusyLaneKeepsItsSlot(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{Latency: sandbox.Duration(5 * time.Millisecond)}})
	hot := traces("HOT", 1, 40)
	ones := traces("ONE", 30, 1)
	b.register(hot)
	b.register(ones)
	// The hot waybill's events mixed in among the others, as a dispatch
	// system publishes them.
	b.publishInterleaved(t, append(slices.Clone(hot), ones...))
	b.startWorker(t, worker.Config{Concurrency: 1})
	b.waitSettled(t, time.Minute)
	if dups := b.checkDelivered(t, append(hot, ones...)); dups != 0 {
		t.Fatalf("%d duplicate deliveries without any crash", dups)
	}

	// The calls in the order the sandbox took them: how often did the
	// hot waybill's run of calls break for another waybill's?
	var calls []sandbox.Call
	for _, w := range b.sb.Waybills() {
		calls = append(calls, b.sb.Calls(w)...)
	}
	slices.SortFunc(calls, func(a, b sandbox.Call) int { return int(a.Seq - b.Seq) })
	runs, inRun := 0, false
	for _, c := range calls {
		isHot := strings.HasPrefix(c.WaybillID, "HOT")
		if isHot && !inRun {
			runs++
		}
		inRun = isHot
	}
	// Handing the slot back after each delivery gives about one run per
	// single-event waybill (30). Keeping it leaves the breaks of the
	// start, while the worker still receives the hot lane's events, and
	// one for each of the last events, once the lane holds fewer than
	// keepFactor (8) times the one event of each waiting lane.
	if runs > 14 {
		t.Fatalf("the hot waybill's 40 calls came in %d runs between other waybills' calls, want at most 14", runs)
	}
	t.Logf("the hot waybill's 40 calls came in %d runs", runs)
}
