package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
)

// The API latency and concurrency of scenario 12: WeChat answering in
// 100 ms and a worker meant to deliver 10,000 events/s, which by Little's
// law needs 1,000 calls in flight.
const (
	ManyCallsLatency     = 100 * time.Millisecond
	ManyCallsConcurrency = 1024
)

// runManyCalls is scenario 12: scenario 3's job (history on) against an
// API answering after ManyCallsLatency, with ManyCallsConcurrency calls
// in flight and room to hold them (MaxInFlight per partition at least
// the concurrency's share).
func (r *runner) runManyCalls(ctx context.Context) (Result, error) {
	mr := *r
	mr.opts.Latency, mr.opts.Concurrency, mr.opts.History = ManyCallsLatency, ManyCallsConcurrency, true
	mr.opts.MaxInFlight = max(mr.opts.MaxInFlight, 2*ManyCallsConcurrency/mr.opts.Partitions)
	p, err := mr.latencyPlan(traffic.Uniform)
	if err != nil {
		return Result{}, err
	}
	run, err := mr.runJob(ctx, p)
	if err != nil {
		return Result{}, err
	}
	r.progress("12 many calls: %.0f events/s, order %+v", run.Rate, run.Order)
	res := boundResult(12, fmt.Sprintf("calls in flight (%s, concurrency %d, history on)", ManyCallsLatency, ManyCallsConcurrency), mr.opts, p, run)
	res.Details["max_in_flight"] = mr.opts.MaxInFlight
	return res, nil
}
