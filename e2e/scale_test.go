package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestWorkersShareKillAndTakeOver: three worker processes share 20,000
// events over 2,000 waybills with -1 failures; two of them are killed with
// SIGKILL mid-run and replaced. Every event arrives, in order per waybill;
// duplicates stay within what the killed workers had in flight; the
// workers alive at the end share the last stretch fairly.
func TestWorkersShareKillAndTakeOver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes for about a minute")
	}
	const (
		waybills, perWaybill = 2000, 10
		total                = waybills * perWaybill
		concurrency          = 8
	)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Seed: 5,
		Faults: sandbox.Faults{SystemErrorRate: 0.1, Latency: sandbox.Duration(40 * time.Millisecond)}})
	t.Cleanup(sb.Close)
	trs := makeTraces("SC", waybills, perWaybill)
	firstHalf, secondHalf := make([]trace, len(trs)), make([]trace, len(trs))
	for i, tr := range trs {
		firstHalf[i], secondHalf[i] = tr[:perWaybill/2], tr[perWaybill/2:]
	}

	args := []string{"--concurrency", fmt.Sprint(concurrency)}
	w1 := startWorker(t, s.ClientURL(), sb, args...)
	w2 := startWorker(t, s.ClientURL(), sb, args...)
	w3 := startWorker(t, s.ClientURL(), sb, args...)
	publishAll(ctx, t, js, firstHalf)

	delivered := func() int { return int(sb.Stats().Delivered) }
	waitFor := func(what string, cond func() bool, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s (delivered %d of %d)", what, within, delivered(), total)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Two crashes while the first half flows, each replaced by a new worker.
	waitFor("2,000 delivered", func() bool { return delivered() >= 2000 }, 2*time.Minute)
	w1.kill9(t)
	killedAt := time.Now()
	w4 := startWorker(t, s.ClientURL(), sb, args...)
	waitFor("5,000 delivered", func() bool { return delivered() >= 5000 }, 2*time.Minute)
	w2.kill9(t)
	w5 := startWorker(t, s.ClientURL(), sb, args...)
	waitFor("first half drained", func() bool { return streamEmpty(ctx, js) && delivered() >= total/2 }, 3*time.Minute)
	t.Logf("first half done %s after the first kill", time.Since(killedAt).Round(time.Second))

	// The second half lands on every partition at once: how the live
	// workers share it shows how they share the partitions.
	mark := sb.Stats().UpdateCalls
	publishAll(ctx, t, js, secondHalf)
	waitFor("second half drained", func() bool { return streamEmpty(ctx, js) && delivered() >= total }, 3*time.Minute)

	dups := checkOrder(t, sb, trs)
	t.Logf("events %d, delivered %d, duplicate deliveries %d, API calls %d", total, delivered()-dups, dups, sb.Stats().UpdateCalls)
	// What a killed worker can have delivered and not yet had its ack
	// confirmed is one event per waybill lane: its calls in flight and
	// the lanes whose ack was on its way. So every duplicate repeats a
	// killed worker's delivery, at most once per waybill and worker.
	killed := map[int]bool{w1.cmd.Process.Pid: true, w2.cmd.Process.Pid: true}
	fromKilled, fromLive, again := duplicateSources(sb, trs, killed)
	t.Logf("duplicates after a delivery by a killed worker %d (again on one waybill %d), by a live one %d", fromKilled, again, fromLive)
	if fromKilled+fromLive+again != dups {
		t.Errorf("duplicate sources %d + %d + %d do not add up to the %d duplicates seen", fromKilled, fromLive, again, dups)
	}
	if fromLive > 0 {
		t.Errorf("%d duplicates repeat a delivery made by a worker that was not killed:\n%s", fromLive, explainDuplicates(sb, trs, 3))
	}
	if again > 0 {
		t.Errorf("%d duplicates repeat a killed worker a second time on one waybill:\n%s", again, explainDuplicates(sb, trs, 3))
	}

	// Shares of the second half among the workers alive at the end.
	live := map[int]int{w3.cmd.Process.Pid: 0, w4.cmd.Process.Pid: 0, w5.cmd.Process.Pid: 0}
	counted := 0
	for _, w := range sb.Waybills() {
		for _, c := range sb.Calls(w) {
			if c.Seq <= mark {
				continue
			}
			if n, ok := live[agentPID(c.UserAgent)]; ok {
				live[agentPID(c.UserAgent)] = n + 1
				counted++
			}
		}
	}
	t.Logf("calls per live worker for the second half: %v", live)
	if counted < 1000 {
		t.Fatalf("only %d calls of the second half could be told apart by worker: the share check would prove nothing", counted)
	}
	fair := float64(counted) / float64(len(live))
	for pid, n := range live {
		if float64(n) < fair/2 || float64(n) > fair*2 {
			t.Errorf("worker pid %d made %d calls, not within 2x of the fair %.0f", pid, n, fair)
		}
	}
	for _, w := range []*workerProc{w3, w4, w5} {
		if code := w.term(t); code != 0 {
			t.Errorf("worker pid %d exit %d after SIGTERM, want 0", w.cmd.Process.Pid, code)
		}
	}
}
