package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// jobRun is one delivery job against the sandbox with a fixed latency.
type jobRun struct {
	Events  int     `json:"events"`
	Seconds float64 `json:"seconds"` // start of the worker to the last first delivery
	// StartDelay is the start of the worker to its first delivery; Drain
	// the first delivery to the last first delivery, over which Rate is
	// taken: how fast a worker starts is reported apart from its pace.
	StartDelay float64       `json:"start_delay_seconds"`
	Drain      float64       `json:"drain_seconds"`
	Rate       float64       `json:"events_per_s"`
	Order      traffic.Order `json:"order"`
	MaxHeld    int           `json:"max_held"` // most messages the worker held at a sample
	APICalls   int64         `json:"api_calls"`
	// Calls splits Rate into Little's factors: Rate = MeanInFlight /
	// MeanCall, so Rate / (C/L) = InFlightShare * LatencyShare.
	Calls callStats `json:"calls"`
	// HTTPCeiling is what Concurrency goroutines calling the sandbox in a
	// closed loop with the same client delivered just before the job, no
	// NATS involved: the most the machine allowed at that moment.
	HTTPCeiling float64 `json:"http_ceiling_events_per_s"`
	// Hottest is how the waybill with the most events fared.
	Hottest traffic.Hottest `json:"hottest"`
	// LaneGaps is the time a lane spent between two calls of its
	// waybill, over all waybills and for the hottest one.
	LaneGaps, HottestLaneGaps laneGaps
}

// latencyPlan is the job of scenarios 3 and 7 (shape Uniform) and 4 (Zipf).
func (r *runner) latencyPlan(shape traffic.Shape) (*traffic.Plan, error) {
	return traffic.New(traffic.Spec{Shape: shape, Waybills: r.opts.Waybills, Events: r.opts.LatencyEvents, Seed: r.opts.Seed})
}

// runJob publishes p (not timed), then starts a worker with the product's
// HTTP client against a sandbox answering after Latency, and times it
// until every event was delivered at least once; then it waits for the
// stream to empty and reads the order from the sandbox's record.
func (r *runner) runJob(ctx context.Context, p *traffic.Plan) (jobRun, error) {
	e, err := newEnv(ctx, r.opts)
	if err != nil {
		return jobRun{}, err
	}
	defer e.close()
	defer r.history.count(e) // before close: flushes and counts the history writer
	sb, client, err := newSandbox(r.opts.Latency, r.opts.Concurrency)
	if err != nil {
		return jobRun{}, err
	}
	defer sb.Close()
	if err := e.publishPlan(ctx, p); err != nil {
		return jobRun{}, err
	}
	// The first call fetches the access token; do it before the clock
	// starts, as a long-running worker has.
	if o := client.UpdatePath(ctx, traffic.Event("WARMUP", 0)); o.Kind != pathupdate.Delivered {
		return jobRun{}, fmt.Errorf("warm-up call: %v", o)
	}
	ceiling, err := httpCeiling(ctx, client, r.opts.Concurrency, min(len(p.Items), 10_000))
	if err != nil {
		return jobRun{}, err
	}
	sb.Reset()

	api := newMeteredAPI(client)
	start := time.Now()
	w, err := e.startWorker(ctx, api, r.opts)
	if err != nil {
		return jobRun{}, err
	}
	defer w.Stop(context.Background())
	// Sample how much the worker holds while it works.
	maxHeld := 0
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				maxHeld = max(maxHeld, w.Stats().Held)
			}
		}
	}()
	done, err := waitDelivered(ctx, sb, p)
	close(stopSampling)
	<-sampleDone
	if err != nil {
		return jobRun{}, err
	}
	if err := e.waitEmpty(ctx); err != nil {
		return jobRun{}, err
	}
	took := done.Sub(start)
	first := p.FirstArrival(sb)
	drain := done.Sub(first)
	return jobRun{
		Events: len(p.Items), Seconds: took.Seconds(), StartDelay: first.Sub(start).Seconds(), Drain: drain.Seconds(),
		Rate:  float64(len(p.Items)) / drain.Seconds(),
		Order: p.Check(sb), MaxHeld: maxHeld, APICalls: sb.Stats().UpdateCalls,
		Calls: api.stats(drain, r.opts.Concurrency, r.opts.Latency), HTTPCeiling: ceiling,
		Hottest:  p.HottestProgress(sb, start),
		LaneGaps: api.gapsOf(""), HottestLaneGaps: api.gapsOf(traffic.WaybillID(slices.Index(p.Counts, p.MaxPerWaybill()))),
	}, nil
}

// httpCeiling has concurrency goroutines deliver n events (of waybills
// the plans never use) to the sandbox through client in a closed loop and
// returns events/s.
func httpCeiling(ctx context.Context, client worker.Deliverer, concurrency, n int) (float64, error) {
	var next atomic.Int64
	errs := make(chan error, concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if o := client.UpdatePath(ctx, traffic.Event(fmt.Sprintf("CEIL%06d", i), 0)); o.Kind != pathupdate.Delivered {
					errs <- fmt.Errorf("ceiling call: %v", o)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / took.Seconds(), nil
}

// runLatencyBound is scenario 3.
func (r *runner) runLatencyBound(ctx context.Context) (Result, *traffic.Plan, jobRun, error) {
	p, err := r.latencyPlan(traffic.Uniform)
	if err != nil {
		return Result{}, nil, jobRun{}, err
	}
	// With delivery history on, as the product runs by default.
	hr := *r
	hr.opts.History = true
	run, err := hr.runJob(ctx, p)
	if err != nil {
		return Result{}, nil, jobRun{}, err
	}
	r.progress("3 latency-bound: %.0f events/s, order %+v", run.Rate, run.Order)
	res := boundResult(3, fmt.Sprintf("latency-bound (%s, %d waybills, history on)", r.opts.Latency, r.opts.Waybills), r.opts, p, run)
	return res, p, run, nil
}

// boundResult reports a job against min(Little's bound, the HTTP ceiling
// measured just before it): the most the concurrency allows at the API's
// latency, or what the machine allowed, whichever is less.
func boundResult(id int, name string, o Options, p *traffic.Plan, run jobRun) Result {
	little := traffic.LittleBound(o.Concurrency, o.Latency.Seconds())
	bound, refName := little, fmt.Sprintf("Little: %d / %s", o.Concurrency, o.Latency)
	if run.HTTPCeiling > 0 && run.HTTPCeiling < little {
		bound, refName = run.HTTPCeiling, fmt.Sprintf("HTTP ceiling (Little: %d / %s = %.0f)", o.Concurrency, o.Latency, little)
	}
	ok := ratio(run.Rate, bound) >= 0.9 && run.Order.Violations == 0 && run.Order.Missing == 0
	return Result{
		ID: id, Name: name, Unit: "ev/s",
		Ours: run.Rate, Reference: bound, RefName: refName,
		Ratio: ratio(run.Rate, bound), Target: ">= 0.90 of min(Little, HTTP ceiling), 0 order violations", Met: met(ok),
		Details: map[string]any{"run": run, "concurrency": o.Concurrency, "latency_ms": o.Latency.Seconds() * 1000,
			"little_bound": little, "max_events_per_waybill": p.MaxPerWaybill()},
		Notes: []string{orderNote(run.Order), littleNote(run),
			fmt.Sprintf("start: first delivery %.2fs after the worker started; the rate is over the drain from it (%.2fs)", run.StartDelay, run.Drain)},
	}
}

// runSkewed is scenario 4: the same job with Zipf-distributed waybills.
// The reference is the skew-aware bound: the hottest waybill's events go
// one at a time, so the job takes at least max(N*L/C, hottest*L).
func (r *runner) runSkewed(ctx context.Context) (Result, error) {
	p, err := r.latencyPlan(traffic.Zipf)
	if err != nil {
		return Result{}, err
	}
	run, err := r.runJob(ctx, p)
	if err != nil {
		return Result{}, err
	}
	r.progress("4 zipf: %.0f events/s, order %+v", run.Rate, run.Order)
	little := traffic.LittleBound(r.opts.Concurrency, r.opts.Latency.Seconds())
	nominal := p.KeyBound(r.opts.Concurrency, r.opts.Latency.Seconds())
	hot := p.MaxPerWaybill()
	// The same bound at the call time the machine allowed just before
	// (the HTTP ceiling's): the hottest waybill's events cannot go faster
	// than one call each, and a call here costs more than the sandbox's
	// latency. As in scenario 3, the reference is the lower of the two
	// (Little's or the HTTP ceiling there): what is left below it is the
	// pipeline's own doing.
	bound, refName := nominal, "skew-aware bound"
	adjusted := nominal
	if run.HTTPCeiling > 0 {
		callT := float64(r.opts.Concurrency) / run.HTTPCeiling
		adjusted = min(run.HTTPCeiling, float64(len(p.Items))/(float64(hot)*callT))
	}
	if adjusted < nominal {
		bound, refName = adjusted, fmt.Sprintf("skew-aware bound at the machine's call time (%.0f at %s)", nominal, r.opts.Latency)
	}
	ok := ratio(run.Rate, bound) >= 0.9 && run.Order.Violations == 0 && run.Order.Missing == 0
	return Result{
		ID: 4, Name: fmt.Sprintf("Zipf waybills (s=%.1f v=%.0f)", traffic.ZipfS, traffic.ZipfV), Unit: "ev/s",
		Ours: run.Rate, Reference: bound, RefName: refName,
		Ratio: ratio(run.Rate, bound), Target: ">= 0.90 of min(skew-aware bound, the same at the HTTP ceiling's call time), 0 violations", Met: met(ok),
		Details: map[string]any{"run": run, "little_bound": little, "ratio_vs_little": ratio(run.Rate, little),
			"hottest_waybill_events": hot, "hottest_share": float64(hot) / float64(len(p.Items)),
			"waybills_with_events": countNonZero(p.Counts), "nominal_bound": nominal, "ratio_vs_nominal": ratio(run.Rate, nominal),
			"machine_adjusted_bound": adjusted, "ratio_vs_machine_adjusted": ratio(run.Rate, adjusted)},
		Notes: []string{
			fmt.Sprintf("zipf: hottest waybill has %d of %d events (%.1f%%): alone it needs %.1fs at %s a call; Little's bound would be %.0f ev/s (ratio %.2f)",
				hot, len(p.Items), 100*float64(hot)/float64(len(p.Items)), float64(hot)*r.opts.Latency.Seconds(), r.opts.Latency, little, ratio(run.Rate, little)),
			fmt.Sprintf("zipf: at %s a call the skew-aware bound is %.0f ev/s (ours is %.2f of that); at the call time the machine allowed just before (%.1f ms, from the HTTP ceiling) it is %.0f ev/s (ours is %.2f of that)",
				r.opts.Latency, nominal, ratio(run.Rate, nominal), 1000*float64(r.opts.Concurrency)/run.HTTPCeiling, adjusted, ratio(run.Rate, adjusted)),
			fmt.Sprintf("zipf: every other waybill was done after %.1fs; by then the hottest had %d of its %d events delivered, its last at %.1fs (%.1f ms an event); between two of its calls its lane spent %.1f ms on average (median %.1f, %.1f in the last tenth)",
				run.Hottest.OthersDoneAfter.Seconds(), run.Hottest.HotDeliveredByOthersDone, run.Hottest.Events, run.Hottest.HotDoneAfter.Seconds(),
				1000*run.Hottest.HotDoneAfter.Seconds()/float64(run.Hottest.Events), run.HottestLaneGaps.MeanMS, run.HottestLaneGaps.MedianMS, run.HottestLaneGaps.LastTenthMS),
			orderNote(run.Order), littleNote(run),
		},
	}, nil
}

// littleNote splits a job's ratio to Little's bound into its two factors.
func littleNote(run jobRun) string {
	c := run.Calls
	return fmt.Sprintf("little: %.1f calls in flight on average (%.0f%% of the concurrency), %.1f ms a call as the worker saw it (the sandbox's latency is %.0f%% of it); the same client in a closed loop without NATS did %.0f ev/s just before (ours is %.2f of that)",
		c.MeanInFlight, 100*c.InFlightShare, c.MeanCallMS, 100*c.CallShare, run.HTTPCeiling, ratio(run.Rate, run.HTTPCeiling))
}

func orderNote(o traffic.Order) string {
	return fmt.Sprintf("order: %d events, %d delivered, %d missing, %d duplicates, %d order violations in %d waybills",
		o.Events, o.Delivered, o.Missing, o.Duplicates, o.Violations, o.WaybillsViolated)
}

func countNonZero(xs []int) int {
	n := 0
	for _, x := range xs {
		if x > 0 {
			n++
		}
	}
	return n
}
