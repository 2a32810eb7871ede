package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// apiFault is one way the WeChat API (or what stands between it and the
// worker) misbehaves while events flow. Whatever it is, every event must
// be delivered in order, none dead-lettered (none of these is the event's
// fault), and a duplicate may only come from an answer the worker never
// saw.
type apiFault struct {
	name    string
	sandbox sandbox.Faults
	// tokenTTL, when set, is the life of the sandbox's access tokens.
	tokenTTL time.Duration
	opts     workerOpts
	// waybills, steps and pace shape the traffic (step j of every waybill,
	// then pace, then step j+1).
	waybills, steps int
	pace            time.Duration
	// front, when set, puts a proxy in front of the sandbox and returns
	// the URL workers call and how to read the proxy's counts.
	front func(t *testing.T, r *rig) (string, func() proxyStats)
	// during runs while the traffic flows, until ctx ends.
	during func(ctx context.Context, t *testing.T, r *rig)
	// check asserts what is particular to the fault, with the sandbox's
	// stats and the figures so far (it may add notes).
	check func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures)
	// within bounds the whole run.
	within time.Duration
	// workers is how many worker processes share the work; default 1.
	workers int
	// before runs before the traffic starts.
	before func(t *testing.T)
}

// TestChaosAPIFaults runs each API fault against its own nats-server,
// sandbox and worker process (two where they share the access token). The faults run at once (goroutines,
// not t.Parallel: most of their time is waiting, and -parallel on two
// cores would queue them).
func TestChaosAPIFaults(t *testing.T) {
	t.Parallel()
	outage := bySize(5*time.Second, 60*time.Second)
	spikes := bySize(1, 4)
	faults := []apiFault{
		{
			name:    "system error -1 at 30%",
			sandbox: sandbox.Faults{SystemErrorRate: 0.3, Latency: sandbox.Duration(5 * time.Millisecond)},
			// The product's default budget is 10 attempts: at 30% one event
			// in 170,000 would exhaust it by chance. 20 makes that 1 in 3e10.
			opts:     workerOpts{RetryAttempts: 20},
			waybills: bySize(60, 400), steps: bySize(5, 10), pace: 100 * time.Millisecond,
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				f.Notes = fmt.Sprintf("%d answers -1", st.ByErrcode[sandbox.ErrcodeSystemError])
				if st.ByErrcode[sandbox.ErrcodeSystemError] == 0 {
					t.Error("no -1 answered: the fault was not exercised")
				}
				noDuplicates(t, r, trs, f)
			},
		},
		{
			name:     "HTTP 500/502/503/504 at 30%",
			sandbox:  sandbox.Faults{HTTP5xxRate: 0.3, Latency: sandbox.Duration(5 * time.Millisecond)},
			opts:     workerOpts{RetryAttempts: 20},
			waybills: bySize(60, 400), steps: bySize(5, 10), pace: 100 * time.Millisecond,
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				f.Notes = fmt.Sprintf("HTTP 500 %d, 502 %d, 503 %d, 504 %d", st.ByHTTPStatus[500], st.ByHTTPStatus[502], st.ByHTTPStatus[503], st.ByHTTPStatus[504])
				for _, code := range []int{500, 502, 504} {
					if st.ByHTTPStatus[code] == 0 {
						t.Errorf("no HTTP %d answered: the fault was not exercised", code)
					}
				}
				noDuplicates(t, r, trs, f)
			},
		},
		{
			// No worker flag sets the HTTP call timeout: it is the client's
			// default, 10 s. Spikes of 11 s make every call that arrives in
			// the spike time out.
			name:     fmt.Sprintf("%d latency spike(s) of 11s, above the 10s call timeout", spikes),
			sandbox:  sandbox.Faults{Latency: sandbox.Duration(10 * time.Millisecond)},
			waybills: bySize(40, 200), steps: bySize(8, 20), pace: bySize(1500*time.Millisecond, 3*time.Second),
			during: func(ctx context.Context, t *testing.T, r *rig) {
				for range spikes {
					if !sleepCtx(ctx, r.rng.between(500*time.Millisecond, 2*time.Second)) {
						return
					}
					// The spike lasts until a few calls met it (traffic comes in
					// steps, with quiet moments between), or 4 s. Calls are
					// counted as they arrive: a call that arrived before the
					// spike and is answered during it did not meet it.
					spike := time.Now()
					r.sb.SetFaults(sandbox.Faults{Latency: sandbox.Duration(11 * time.Second)})
					for end := time.Now().Add(4 * time.Second); time.Now().Before(end) && arrivedSince(r.sb, spike) < 4; {
						sleepCtx(ctx, 20*time.Millisecond)
					}
					r.sb.SetFaults(sandbox.Faults{Latency: sandbox.Duration(10 * time.Millisecond)})
					if !sleepCtx(ctx, 12*time.Second) {
						return
					}
				}
			},
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				f.Notes = fmt.Sprintf("%d calls timed out by the worker", st.ByHTTPStatus[sandbox.StatusClientClosed])
				if st.ByHTTPStatus[sandbox.StatusClientClosed] == 0 {
					t.Error("no call timed out: the spike was not exercised")
				}
				noDuplicates(t, r, trs, f)
			},
			within: bySize(2*time.Minute, 5*time.Minute),
		},
		{
			// An answer is about 150 bytes: a connection lasts 0 to 10 answers.
			name:     "connection resets (each connection after 0 to 10 answers)",
			sandbox:  sandbox.Faults{Latency: sandbox.Duration(5 * time.Millisecond)},
			waybills: bySize(60, 400), steps: bySize(5, 10), pace: 100 * time.Millisecond,
			front: func(t *testing.T, r *rig) (string, func() proxyStats) {
				p := startResetProxy(t, r.sb.URL, 1500, r.rng)
				return p.URL, func() proxyStats { return proxyStats{conns: p.conns.Load(), resets: p.resets.Load()} }
			},
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				n := ps.resets
				f.Notes = fmt.Sprintf("%d of %d connections reset", n, ps.conns)
				if n == 0 {
					t.Error("no connection was reset: the fault was not exercised")
				}
				// A reset after the sandbox took the event is the only way to a
				// duplicate here: at most one per reset.
				if int64(f.Duplicates) > n {
					t.Errorf("%d duplicates from %d resets:\n%s", f.Duplicates, n, explainDuplicates(r.sb, trs, 3))
				}
			},
		},
		{
			name:    fmt.Sprintf("API outage of %s", outage),
			sandbox: sandbox.Faults{Latency: sandbox.Duration(5 * time.Millisecond)},
			// A small budget: were the outage counted against events, they
			// would be dead-lettered as retries_exhausted within a second.
			opts:     workerOpts{RetryAttempts: 3, RetryMax: 100 * time.Millisecond},
			waybills: bySize(60, 300), steps: bySize(6, 12), pace: bySize(500*time.Millisecond, 5*time.Second),
			during: func(ctx context.Context, t *testing.T, r *rig) {
				if !sleepCtx(ctx, time.Second) {
					return
				}
				r.sb.SetFaults(sandbox.Faults{Latency: sandbox.Duration(5 * time.Millisecond), OutageUntil: time.Now().Add(outage)})
			},
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				f.Notes = fmt.Sprintf("%d calls answered 503 during the outage", st.ByHTTPStatus[http.StatusServiceUnavailable])
				if st.ByHTTPStatus[http.StatusServiceUnavailable] == 0 {
					t.Error("no call met the outage")
				}
				noDuplicates(t, r, trs, f)
			},
			within: outage + 2*time.Minute,
		},
		{
			name: "minute quota 45011",
			// The quota is spent within seconds; the rest waits for the next
			// wall-clock minute (the sandbox's and the workers' clocks agree).
			sandbox:  sandbox.Faults{MinuteQuota: bySize(150, 1500), Latency: sandbox.Duration(2 * time.Millisecond)},
			opts:     workerOpts{RetryAttempts: 3, RetryMax: 100 * time.Millisecond},
			waybills: bySize(50, 500), steps: 5, pace: 50 * time.Millisecond,
			before: func(t *testing.T) {
				// Start early in a minute so that the quota runs out before
				// the minute does.
				if s := time.Now().Second(); s > 40 {
					time.Sleep(time.Duration(61-s) * time.Second)
				}
			},
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				n := st.ByErrcode[sandbox.ErrcodeMinuteQuota]
				f.Notes = fmt.Sprintf("%d calls answered 45011", n)
				if n == 0 {
					t.Error("no call answered 45011: the quota was not exercised")
				}
				// Pausing delivery as a whole means a few calls meet the quota
				// (those in flight, then one probe per worker), not every held
				// event again and again.
				if n > 100 {
					t.Errorf("%d calls answered 45011: the workers keep calling into a spent quota", n)
				}
				noDuplicates(t, r, trs, f)
			},
			within: 3 * time.Minute,
		},
		{
			name:     "access tokens expiring every 3s and revoked every 1.3s",
			tokenTTL: 3 * time.Second,
			workers:  2, // sharing the stable token
			sandbox:  sandbox.Faults{Latency: sandbox.Duration(5 * time.Millisecond)},
			opts:     workerOpts{RetryAttempts: 3, RetryMax: 100 * time.Millisecond},
			waybills: bySize(40, 200), steps: bySize(10, 30), pace: time.Second,
			during: func(ctx context.Context, t *testing.T, r *rig) {
				// Not a divisor of the pace nor of the sources' refresh
				// cadence (half the 3 s lifetime): with a 2 s period every
				// revocation could fall just before a proactive refresh,
				// and no call ever met a revoked token.
				for sleepCtx(ctx, 1300*time.Millisecond) {
					r.sb.RevokeTokens()
				}
			},
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				refused := st.ByErrcode[sandbox.ErrcodeInvalidCredential] + st.ByErrcode[sandbox.ErrcodeTokenExpired]
				f.Notes = fmt.Sprintf("%d stable tokens issued, %d calls refused for their token", st.StableTokensIssued, refused)
				if st.StableTokensIssued < 4 {
					t.Errorf("%d stable tokens issued over the run: tokens did not turn over", st.StableTokensIssued)
				}
				if refused == 0 {
					t.Error("no call was refused for its token: the fault was not exercised")
				}
				noDuplicates(t, r, trs, f)
			},
		},
		{
			name:     "answers that are not JSON (20%) with -1 at 20%",
			sandbox:  sandbox.Faults{SystemErrorRate: 0.2, Latency: sandbox.Duration(5 * time.Millisecond)},
			opts:     workerOpts{RetryAttempts: 30},
			waybills: bySize(60, 400), steps: bySize(5, 10), pace: 100 * time.Millisecond,
			front: func(t *testing.T, r *rig) (string, func() proxyStats) {
				g := startGarbleProxy(t, r.sb.URL, 0.2, r.rng)
				return g.URL, func() proxyStats {
					return proxyStats{garbled: g.garbled.Load(), garbledDelivered: g.garbledDelivered.Load()}
				}
			},
			check: func(t *testing.T, r *rig, trs []trace, st sandbox.Stats, ps proxyStats, f *figures) {
				n, taken := ps.garbled, ps.garbledDelivered
				f.Notes = fmt.Sprintf("%d answers garbled, %d of them for an event the sandbox took", n, taken)
				if n == 0 || taken == 0 || n == taken {
					t.Errorf("%d answers garbled, %d of delivered calls: the fault was not exercised both ways", n, taken)
				}
				// The worker cannot tell a garbled "ok" from a failure: each
				// must be delivered again, once; nothing else may repeat.
				if int64(f.Duplicates) != taken {
					t.Errorf("%d duplicates, want exactly the %d garbled answers of delivered calls:\n%s", f.Duplicates, taken, explainDuplicates(r.sb, trs, 3))
				}
			},
		},
	}
	var wg sync.WaitGroup
	for _, fault := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fault.name, func(t *testing.T) { runAPIFault(t, fault) })
		}()
	}
	wg.Wait()
}

// arrivedSince counts the calls that reached the sandbox at t or later.
func arrivedSince(sb *sandbox.Server, t time.Time) int {
	n := 0
	for _, w := range sb.Waybills() {
		for _, c := range sb.Calls(w) {
			if !c.At.Before(t) {
				n++
			}
		}
	}
	return n
}

// proxyStats are the counts of a proxy in front of the sandbox.
type proxyStats struct {
	conns, resets             int64 // resetProxy
	garbled, garbledDelivered int64 // garbleProxy
}

func runAPIFault(t *testing.T, fault apiFault) {
	sbcfg := sandbox.Config{AcceptAnyWaybill: true, Faults: fault.sandbox, TokenTTL: fault.tokenTTL}
	r := newRig(t, sbcfg, pathupdate.StreamsConfig{})
	api, proxy := r.sb.URL, func() proxyStats { return proxyStats{} }
	if fault.front != nil {
		api, proxy = fault.front(t, r)
	}
	var workers []*workerProc
	for range max(fault.workers, 1) {
		workers = append(workers, startChaosWorker(t, r.node.URL(), api, fault.opts))
	}
	if fault.before != nil {
		fault.before(t)
	}
	within := fault.within
	if within == 0 {
		within = bySize(2*time.Minute, 6*time.Minute)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	r.t0 = time.Now()
	trs := makeTraces(fmt.Sprintf("F%d", r.rng.IntN(1000)), fault.waybills, fault.steps)
	fd := feed(ctx, t, r.js, trs, fault.pace)
	duringDone := make(chan struct{})
	go func() {
		defer close(duringDone)
		if fault.during != nil {
			fault.during(ctx, t, r)
		}
	}()
	fd.wait(t, within)
	waitDrained(ctx, t, r.js, r.sb, trs)
	cancel()
	<-duringDone

	f := verify(t, fault.name, r.sb, trs, r.t0)
	f.Seed = r.seed
	dls := readDeadLetters(context.Background(), t, r.js)
	f.DeadLettered = len(dls)
	if len(dls) != 0 {
		t.Errorf("%d dead letters (first: %s %q), want none: no fault here is the event's", len(dls), dls[0].Reason, dls[0].ErrMsg)
	}
	fault.check(t, r, trs, r.sb.Stats(), proxy(), &f)
	for _, w := range workers {
		requireHealthy(t, w)
	}
	f.report(t)
	stopAll(t, workers...)
}

func noDuplicates(t *testing.T, r *rig, trs []trace, f *figures) {
	t.Helper()
	if f.Duplicates != 0 {
		t.Errorf("%d duplicate deliveries: no answer was lost on the way, so none may repeat:\n%s", f.Duplicates, explainDuplicates(r.sb, trs, 3))
	}
}

// sleepCtx sleeps d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Hour)
	}
	return d
}
