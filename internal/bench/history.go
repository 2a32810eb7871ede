package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/bench/traffic"
)

// runHistoryDrain is scenario 8: scenario 2's drain (instant API) with
// delivery history off and on, alternating, in the same run. The cost of
// history is 1 - on/off.
func (r *runner) runHistoryDrain(ctx context.Context) (Result, error) {
	*r.history = historyCounts{}
	rates, n, err := r.drainOnOff(ctx, "8 history", func(o *Options, on bool) { o.History = on })
	if err != nil {
		return Result{}, err
	}
	o := r.opts
	on, off := median(rates["on"]), median(rates["off"])
	return Result{
		ID: 8, Name: "history cost, pipeline (scenario 2 with history on)", Unit: "ev/s",
		Ours: on, Reference: off, RefName: "the same with history off",
		Ratio: ratio(on, off), Target: ">= 0.90, no record dropped", Met: met(ratio(on, off) >= 0.9 && r.history.dropped == 0),
		Details: map[string]any{"events": n, "reps": o.Reps, "rates": rates,
			"history_written": r.history.written, "history_dropped": r.history.dropped},
	}, nil
}

// runHistoryLatency is scenario 9: scenario 3's job (the sandbox answering
// after Latency) with history off and on, alternating.
func (r *runner) runHistoryLatency(ctx context.Context) (Result, error) {
	p, err := r.latencyPlan(traffic.Uniform)
	if err != nil {
		return Result{}, err
	}
	rates := map[string][]float64{}
	violations := 0
	*r.history = historyCounts{}
	for rep := range r.opts.Reps {
		for k := range 2 {
			on := (k+rep)%2 == 1
			rr := *r
			rr.opts.History = on
			run, err := rr.runJob(ctx, p)
			if err != nil {
				return Result{}, fmt.Errorf("history %v: %w", on, err)
			}
			violations += run.Order.Violations
			rates[onOff(on)] = append(rates[onOff(on)], run.Rate)
			r.progress("9 history latency-bound rep %d %s: %.0f events/s", rep+1, onOff(on), run.Rate)
		}
	}
	on, off := median(rates["on"]), median(rates["off"])
	return Result{
		ID: 9, Name: "history cost, latency-bound (scenario 3 with history on)", Unit: "ev/s",
		Ours: on, Reference: off, RefName: "the same with history off",
		Ratio: ratio(on, off), Target: ">= 0.90, no order violation, no record dropped", Met: met(ratio(on, off) >= 0.9 && violations == 0 && r.history.dropped == 0),
		Details: map[string]any{"events": len(p.Items), "reps": r.opts.Reps, "rates": rates, "order_violations": violations,
			"history_written": r.history.written, "history_dropped": r.history.dropped},
	}, nil
}

// runTraceLookup is scenario 10: a waybill's timeline read from a history
// stream that also holds one record of each of TraceWaybills other
// waybills, against the one second an operator will wait.
func (r *runner) runTraceLookup(ctx context.Context) (Result, error) {
	e, err := newEnv(ctx, r.opts)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	if err := history.EnsureStream(ctx, e.js, history.StreamConfig{}); err != nil {
		return Result{}, err
	}
	const target = "TRACED1"
	at := time.Now().UTC()
	rec := func(wb string, seq uint64) []byte {
		return fmt.Appendf(nil, `{"state":"delivered","waybill_id":%q,"seq":%d,"action_type":200001,"action_time":1767225600,"action_msg":"in transit","errcode":0,"attempts":1,"at":%q}`,
			wb, seq, at.Format(time.RFC3339Nano))
	}
	n := r.opts.TraceWaybills
	fill := time.Now()
	for i := range n {
		if i%2000 == 1999 { // stay under the client's limit of acks pending
			select {
			case <-e.js.PublishAsyncComplete():
			case <-ctx.Done():
				return Result{}, ctx.Err()
			}
		}
		if i%(n/10+1) == 0 { // the target's records spread over the stream
			if _, err := e.js.PublishMsgAsync(&nats.Msg{Subject: history.Subject(target), Data: rec(target, uint64(i+1))}); err != nil {
				return Result{}, err
			}
		}
		wb := traffic.WaybillID(i)
		if _, err := e.js.PublishMsgAsync(&nats.Msg{Subject: history.Subject(wb), Data: rec(wb, uint64(i+1))}, jetstream.WithExpectStream(history.Stream)); err != nil {
			return Result{}, err
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	r.progress("10 history of %d waybills written in %s", n, time.Since(fill).Round(time.Millisecond))

	st := history.NewStore(e.js, nil)
	var took []float64
	steps := 0
	for range 20 {
		start := time.Now()
		tl, err := st.Timeline(ctx, target)
		if err != nil {
			return Result{}, err
		}
		took = append(took, float64(time.Since(start).Microseconds())/1000)
		steps = len(tl.Steps)
	}
	slices.Sort(took)
	p50 := took[len(took)/2]
	return Result{
		ID: 10, Name: fmt.Sprintf("trace lookup among %d waybills' history (median of 20)", n), Unit: "ms",
		Ours: p50, Reference: 1000, RefName: "an operator's second",
		Ratio: ratio(p50, 1000), Target: "<= 1.0 (lower is better)", Met: met(p50 <= 1000),
		Details: map[string]any{"other_waybills": n, "steps_found": steps, "ms_sorted": took},
	}, nil
}

// historyCounts adds up what the history writers of a scenario's runs
// wrote and dropped: a writer that dropped records would make history look
// cheaper than it is.
type historyCounts struct {
	written, dropped uint64
}

func (h *historyCounts) count(e *env) {
	if h == nil || e.history == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.history.Close(ctx)
	h.written += e.history.Written()
	h.dropped += e.history.Dropped()
}

// drainOnOff times scenario 2's drain (instant API) Reps times each way
// with what set turns off and on, alternating in the same run, and returns
// the rates under "off" and "on" and the events drained each time.
func (r *runner) drainOnOff(ctx context.Context, what string, set func(o *Options, on bool)) (map[string][]float64, int, error) {
	o := r.opts
	plan, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: o.Waybills, Events: o.BacklogEvents, Seed: o.Seed})
	if err != nil {
		return nil, 0, err
	}
	rates := map[string][]float64{}
	for rep := range o.Reps {
		for k := range 2 {
			on := (k+rep)%2 == 1
			rr := *r
			set(&rr.opts, on)
			rate, err := rr.timeDrain(ctx, "ours", plan)
			if err != nil {
				return nil, 0, fmt.Errorf("%s %v: %w", what, on, err)
			}
			rates[onOff(on)] = append(rates[onOff(on)], rate)
			r.progress("%s drain rep %d %s: %.0f events/s", what, rep+1, onOff(on), rate)
		}
	}
	return rates, len(plan.Items), nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
