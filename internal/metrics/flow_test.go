package metrics_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// event is step j of waybill wb.
func event(wb string, j int) pathupdate.Event {
	return pathupdate.Event{
		Token:      "tok-" + wb,
		WaybillID:  wb,
		ActionTime: 1_767_225_600 + int64(j),
		ActionType: pathupdate.ActionInTransit,
		ActionMsg:  fmt.Sprintf("step %d", j),
	}
}

func (r *run) publish(t *testing.T, evs ...pathupdate.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := r.pub.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMetricsDuringRun scrapes /metrics over HTTP while a real worker
// delivers to the sandbox, which answers -1 to a quarter of the calls,
// and checks the counters against what the sandbox saw.
func TestMetricsDuringRun(t *testing.T) {
	t.Parallel()
	r := startRun(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.25}})
	var batch1 []pathupdate.Event
	for i := range 10 {
		wb := fmt.Sprintf("RUN%02d", i)
		r.sb.AddOrder(wb, "tok-"+wb)
		for j := range 3 {
			batch1 = append(batch1, event(wb, j))
		}
	}
	r.publish(t, batch1...)
	f := r.waitScrape(t, "first batch settled", 30*time.Second, settled(30))

	sb := r.sb.Stats()
	if sb.ByErrcode[-1] == 0 {
		t.Fatal("the sandbox answered no -1: the test proves nothing about errcode -1")
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pathupdate_events_total", []string{"outcome=delivered"}, 30},
		{"pathupdate_events_total", []string{"outcome=dead_lettered"}, 0},
		{"pathupdate_api_calls_total", []string{"kind=delivered", "errcode=0"}, float64(sb.ByErrcode[0])},
		{"pathupdate_api_calls_total", []string{"kind=transient", "errcode=-1"}, float64(sb.ByErrcode[-1])},
		{"pathupdate_api_calls_total", nil, float64(sb.UpdateCalls)},
		{"pathupdate_api_call_duration_seconds", nil, float64(sb.UpdateCalls)},
		{"pathupdate_delivery_latency_seconds", nil, 30},
		{"pathupdate_held_messages", nil, 0},
		{"pathupdate_lanes", nil, 0},
		{"pathupdate_consumer_pending", nil, 0},
		{"pathupdate_consumer_ack_pending", nil, 0},
		{"pathupdate_consumer_lag_read_ok", nil, 1},
	}
	for _, c := range checks {
		if got := f.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sb.Delivered != 30 {
		t.Errorf("the sandbox took %d events, want 30", sb.Delivered)
	}
	// A -1 is retried unless it was the one that opened the breaker.
	if retries := f.get(t, "pathupdate_retries_total", "errcode=-1"); retries == 0 || retries > float64(sb.ByErrcode[-1]) {
		t.Errorf("retries{-1} = %v, want 1..%d", retries, sb.ByErrcode[-1])
	}
	if n := len(f["pathupdate_consumer_pending"].GetMetric()); n != testPartitions+1 {
		t.Errorf("%d consumer_pending series, want one per partition (%d) and one for unpartitioned messages", n, testPartitions)
	}
	if got := f.get(t, "pathupdate_consumer_pending", "partition=unpartitioned"); got != 0 {
		t.Errorf("consumer_pending{partition=\"unpartitioned\"} = %v, want 0", got)
	}
	if _, ok := f["process_cpu_seconds_total"]; !ok {
		t.Error("no process_cpu_seconds_total: the process collector is missing")
	}

	// Second batch: more deliveries, a waybill WeChat does not know, and
	// an event that is not JSON.
	var batch2 []pathupdate.Event
	for j := range 5 {
		batch2 = append(batch2, event("RUN00", 3+j))
	}
	batch2 = append(batch2, event("UNKNOWN1", 0))
	r.publish(t, batch2...)
	if _, err := r.js.Publish(context.Background(), pathupdate.TraceSubject("BROKEN1"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	f = r.waitScrape(t, "second batch settled", 30*time.Second, settled(37))
	sb = r.sb.Stats()
	checks = []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pathupdate_events_total", []string{"outcome=delivered"}, 35},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=rejected"}, 1},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=invalid_event"}, 1},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=retries_exhausted"}, 0},
		{"pathupdate_invalid_events_total", nil, 1},
		{"pathupdate_api_calls_total", []string{"kind=rejected", "errcode=40199"}, 1},
		{"pathupdate_api_calls_total", []string{"errcode=-1"}, float64(sb.ByErrcode[-1])},
		{"pathupdate_api_calls_total", nil, float64(sb.UpdateCalls)},
		{"pathupdate_delivery_latency_seconds", nil, 35},
	}
	for _, c := range checks {
		if got := f.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("after batch 2: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestHeldAndLanes: while the sandbox is slow the gauges show the events
// held behind their waybill's head, then fall back to zero.
func TestHeldAndLanes(t *testing.T) {
	t.Parallel()
	r := startRun(t, sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(300 * time.Millisecond)}})
	for j := range 4 {
		r.publish(t, event("SLOW1", j))
	}
	r.publish(t, event("SLOW2", 0))
	r.waitScrape(t, "5 held in 2 lanes", 10*time.Second, func(f families) bool {
		held, _ := f.sum("pathupdate_held_messages")
		lanes, _ := f.sum("pathupdate_lanes")
		return held == 5 && lanes == 2
	})
	r.sb.SetFaults(sandbox.Faults{})
	f := r.waitScrape(t, "all settled", 30*time.Second, settled(5))
	if got := f.get(t, "pathupdate_lanes"); got != 0 {
		t.Errorf("lanes after settling = %v, want 0", got)
	}
}

// TestBreakerMetrics: an API outage opens the breaker (gauge 2), dead-
// letters nothing, and once it ends the breaker closes (gauge 0) and the
// events are delivered.
func TestBreakerMetrics(t *testing.T) {
	t.Parallel()
	r := startRun(t, sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{OutageUntil: time.Now().Add(time.Hour)}})
	for i := range 3 {
		r.publish(t, event(fmt.Sprintf("OUT%d", i), 0))
	}
	f := r.waitScrape(t, "breaker open", 30*time.Second, func(f families) bool {
		v, _ := f.sum("pathupdate_breaker_state")
		return v == 2
	})
	if got := f.get(t, "pathupdate_breaker_transitions_total", "to=open"); got < 1 {
		t.Errorf("transitions{open} = %v, want at least 1", got)
	}
	if got := f.get(t, "pathupdate_api_calls_total", "kind=transient", "errcode=http_5xx"); got < 5 {
		t.Errorf("api_calls{http_5xx} = %v, want at least the breaker threshold 5", got)
	}
	if got := f.get(t, "pathupdate_events_total", "outcome=delivered"); got != 0 {
		t.Errorf("delivered during the outage = %v", got)
	}
	r.sb.SetFaults(sandbox.Faults{})
	f = r.waitScrape(t, "delivered after the outage", 30*time.Second, settled(3))
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pathupdate_breaker_state", nil, 0},
		{"pathupdate_events_total", []string{"outcome=delivered"}, 3},
		{"pathupdate_events_total", []string{"outcome=dead_lettered"}, 0},
	}
	for _, c := range checks {
		if got := f.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, to := range []string{"half_open", "closed"} {
		if got := f.get(t, "pathupdate_breaker_transitions_total", "to="+to); got < 1 {
			t.Errorf("transitions{%s} = %v, want at least 1", to, got)
		}
	}
}

// TestLabelCardinality: 500 distinct waybills, half of them unknown to
// WeChat, leave no waybill id in any label and only a few dozen series.
func TestLabelCardinality(t *testing.T) {
	t.Parallel()
	r := startRun(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.1}})
	const n = 500
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("CARD%04d", i)
		if i%2 == 0 {
			r.sb.AddOrder(ids[i], "tok-"+ids[i])
		}
		r.publish(t, event(ids[i], 0))
	}
	f := r.waitScrape(t, "500 events settled", 60*time.Second, settled(n))
	if got := f.get(t, "pathupdate_events_total", "outcome=delivered"); got != n/2 {
		t.Errorf("delivered = %v, want %d", got, n/2)
	}
	if got := f.get(t, "pathupdate_events_total", "outcome=dead_lettered", "reason=rejected"); got != n/2 {
		t.Errorf("rejected = %v, want %d", got, n/2)
	}
	for name, mf := range f {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "CARD") || strings.Contains(lp.GetValue(), "tok-") {
					t.Errorf("%s has label %s=%q: a waybill or its token", name, lp.GetName(), lp.GetValue())
				}
			}
		}
		if strings.HasPrefix(name, "pathupdate_") && len(mf.GetMetric()) > 10 {
			t.Errorf("%s has %d series, want at most 10", name, len(mf.GetMetric()))
		}
	}
	if total := f.series("pathupdate_"); total > 60 {
		t.Errorf("%d pathupdate_ series after 500 waybills, want at most 60", total)
	}
}

// TestPausedMetric: a pause made from outside (as `pathupdate pause`
// does) shows on the worker's /metrics within seconds, and its end too.
func TestPausedMetric(t *testing.T) {
	t.Parallel()
	r := startRun(t, sandbox.Config{AcceptAnyWaybill: true})
	ctx := context.Background()
	tg, err := pause.TargetOf(ctx, r.js, worker.ConsumerDefault)
	if err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, r.metrics).get(t, "pathupdate_paused"); got != 0 {
		t.Fatalf("pathupdate_paused = %v before any pause", got)
	}
	if _, err := pause.Pause(ctx, r.js, tg, time.Time{}); err != nil {
		t.Fatal(err)
	}
	f := r.waitScrape(t, "pathupdate_paused 1", 5*time.Second, func(f families) bool { v, _ := f.sum("pathupdate_paused"); return v == 1 })
	if got := f.get(t, "pathupdate_paused_until_seconds"); !math.IsInf(got, 1) {
		t.Fatalf("pathupdate_paused_until_seconds = %v during a pause until resumed, want +Inf", got)
	}
	if _, err := pause.Resume(ctx, r.js, tg); err != nil {
		t.Fatal(err)
	}
	r.waitScrape(t, "pathupdate_paused 0", 5*time.Second, func(f families) bool { v, _ := f.sum("pathupdate_paused"); return v == 0 })
}
