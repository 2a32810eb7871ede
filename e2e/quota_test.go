package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// callsIn counts the sandbox's recorded calls that arrived in [from, to),
// by the calling worker's process id.
func callsIn(sb *sandbox.Server, from, to time.Time) (total int, byPID map[int]int) {
	byPID = map[int]int{}
	for _, w := range sb.Waybills() {
		for _, c := range sb.Calls(w) {
			if !c.At.Before(from) && c.At.Before(to) {
				total++
				byPID[agentPID(c.UserAgent)]++
			}
		}
	}
	return total, byPID
}

// lastCall is when the latest recorded call arrived.
func lastCall(sb *sandbox.Server) time.Time {
	var last time.Time
	for _, w := range sb.Waybills() {
		for _, c := range sb.Calls(w) {
			if c.At.After(last) {
				last = c.At
			}
		}
	}
	return last
}

// TestRateLimitAcrossWorkers: three worker processes with --rate-limit 50
// and a backlog: over 20 s the sandbox records at most 50 x 20 x 1.1
// calls and at least 0.8 of that, about a third from each; when one is
// killed, the two left take half each. Every figure is read from the
// sandbox's record of when each call arrived.
func TestRateLimitAcrossWorkers(t *testing.T) {
	t.Parallel()
	const (
		limit  = 50
		window = 20 * time.Second
	)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Seed: 17})
	t.Cleanup(sb.Close)
	// More than the test can deliver at 50/s: a backlog waits throughout.
	publishAll(ctx, t, js, makeTraces("RL", 400, 10))
	args := []string{"--rate-limit", strconv.Itoa(limit), "--concurrency", "16"}
	ws := []*workerProc{startWorker(t, s.ClientURL(), sb, args...), startWorker(t, s.ClientURL(), sb, args...), startWorker(t, s.ClientURL(), sb, args...)}

	// The window opens once every worker has called (each knows the
	// others by then: they join before they consume) and a heartbeat
	// round has passed.
	waitUntil(t, "calls from all three workers", time.Minute, func() bool {
		_, by := callsIn(sb, time.Time{}, time.Now().Add(time.Hour))
		return by[ws[0].cmd.Process.Pid] > 0 && by[ws[1].cmd.Process.Pid] > 0 && by[ws[2].cmd.Process.Pid] > 0
	})
	from := lastCall(sb).Add(2 * time.Second)
	to := from.Add(window)
	waitUntil(t, "the record to pass the window", window+time.Minute, func() bool { return lastCall(sb).After(to) })
	total, by := callsIn(sb, from, to)
	t.Logf("%d calls in %s with three workers: %v", total, window, by)
	max := limit * window.Seconds() * 1.1
	if float64(total) > max || float64(total) < 0.8*max {
		t.Fatalf("%d calls in %s at --rate-limit %d: want between %.0f and %.0f", total, window, limit, 0.8*max, max)
	}
	for _, w := range ws {
		if n := by[w.cmd.Process.Pid]; float64(n) < float64(total)/3/2 || float64(n) > float64(total)/3*2 {
			t.Errorf("worker pid %d made %d of %d calls: not its third (within 2x)", w.cmd.Process.Pid, n, total)
		}
	}
	before := float64(by[ws[1].cmd.Process.Pid]+by[ws[2].cmd.Process.Pid]) / 2 / window.Seconds()

	// One is killed: once the others see it gone (member-ttl 2s) the two
	// left share the whole limit.
	ws[0].kill9(t)
	from = lastCall(sb).Add(5 * time.Second)
	to = from.Add(10 * time.Second)
	waitUntil(t, "the record to pass the second window", time.Minute, func() bool { return lastCall(sb).After(to) })
	total, by = callsIn(sb, from, to)
	t.Logf("%d calls in 10s with two workers: %v", total, by)
	if max := limit * 10 * 1.1; float64(total) > max || float64(total) < 0.8*max {
		t.Fatalf("%d calls in 10s with two workers: want between %.0f and %.0f", total, 0.8*max, max)
	}
	for _, w := range ws[1:] {
		after := float64(by[w.cmd.Process.Pid]) / 10
		if after < 1.25*before {
			t.Errorf("worker pid %d: %.1f calls/s after the kill, %.1f before: its share did not grow", w.cmd.Process.Pid, after, before)
		}
	}
	for _, w := range ws[1:] {
		requireHealthy(t, w)
	}
}

// TestDailyQuotaAcrossWorkers: a sandbox daily quota of 1,000 and 1,500
// events over three worker processes: 1,000 are delivered and the rest
// wait, none dead-lettered; metrics, readiness and status show 0
// remaining; after the sandbox's day change the rest are delivered in
// order.
func TestDailyQuotaAcrossWorkers(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Seed: 19, Faults: sandbox.Faults{DailyQuota: 1000}})
	t.Cleanup(sb.Close)
	trs := makeTraces("DQ", 150, 10)
	port := natstest.FreePort(t)
	w1 := startWorker(t, s.ClientURL(), sb, "--quota-interval", "1s", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port))
	w2 := startWorker(t, s.ClientURL(), sb, "--quota-interval", "1s")
	w3 := startWorker(t, s.ClientURL(), sb, "--quota-interval", "1s")
	publishAll(ctx, t, js, trs)

	delivered := func() int { return int(sb.Stats().Delivered) }
	metric := func(name string) (float64, bool) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(string(b))
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(m[1], 64)
		return v, err == nil
	}
	waitUntil(t, "1,000 delivered and the metrics showing 0 remaining", 2*time.Minute, func() bool {
		limit, ok1 := metric("pathupdate_wechat_quota_limit")
		remaining, ok2 := metric("pathupdate_wechat_quota_remaining")
		resume, ok3 := metric("pathupdate_wechat_quota_resume_timestamp_seconds")
		return delivered() >= 1000 && ok1 && ok2 && ok3 && limit == 1000 && remaining == 0 && resume > 0
	})
	if n := delivered(); n != 1000 {
		t.Fatalf("%d delivered on a daily quota of 1,000", n)
	}
	if n := streamMsgs(ctx, js, pathupdate.DeadLetterStream); n != 0 {
		t.Fatalf("%d dead letters for a spent quota, want none", n)
	}
	if n := streamMsgs(ctx, js, pathupdate.TraceStream); n != 500 {
		t.Fatalf("%d events waiting in the trace stream, want 500", n)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "daily quota") {
		t.Errorf("/readyz while the quota is spent: %d %s", resp.StatusCode, body)
	}
	code, out, errOut := cliRun(t, "status", "--nats-url", s.ClientURL())
	if code != 0 || !strings.Contains(out, "1000 of 1000 used today, 0 remaining") || !strings.Contains(out, "spent: delivery paused until") {
		t.Fatalf("status while the quota is spent: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(w1.out.String()+w2.out.String()+w3.out.String(), "delivery paused until its daily reset") {
		t.Error("no worker logged the pause")
	}

	sb.NextDay()
	waitUntil(t, "the rest delivered after the day change", 2*time.Minute, func() bool {
		return streamEmpty(ctx, js) && delivered() >= 1500
	})
	checkOrder(t, sb, trs)
	if n := streamMsgs(ctx, js, pathupdate.DeadLetterStream); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
	// A lane meets 45009 about once before the pause holds it back.
	if n := sb.Stats().ByErrcode[sandbox.ErrcodeDailyQuota]; n > 2*int64(len(trs)) {
		t.Errorf("%d calls answered 45009 for %d waybills: delivery did not pause", n, len(trs))
	}
	if v, ok := metric("pathupdate_wechat_quota_resume_timestamp_seconds"); !ok || v != 0 {
		t.Errorf("resume timestamp %v after the pause ended, want 0", v)
	}
	stopAll(t, w1, w2, w3)
}
