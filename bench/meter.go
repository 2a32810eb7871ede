package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// meteredAPI wraps a Deliverer to split a delivery rate into Little's
// law's two factors: how many calls were in flight on average, and how
// long one call took as the caller saw it (rate = in flight / call time).
type meteredAPI struct {
	api   worker.Deliverer
	calls atomic.Int64
	busy  atomic.Int64 // nanoseconds spent in calls, summed over calls
}

func (m *meteredAPI) UpdatePath(ctx context.Context, ev pathupdate.Event) pathupdate.Outcome {
	start := time.Now()
	o := m.api.UpdatePath(ctx, ev)
	m.busy.Add(int64(time.Since(start)))
	m.calls.Add(1)
	return o
}

// callStats are the two factors over a run of the given length.
type callStats struct {
	Calls         int64   `json:"calls"`
	MeanCallMS    float64 `json:"mean_call_ms"`    // as the worker saw it, HTTP included
	MeanInFlight  float64 `json:"mean_in_flight"`  // calls in progress, averaged over the run
	InFlightShare float64 `json:"in_flight_share"` // MeanInFlight / concurrency
	CallShare     float64 `json:"latency_share"`   // sandbox latency / MeanCallMS
}

func (m *meteredAPI) stats(run time.Duration, concurrency int, latency time.Duration) callStats {
	calls, busy := m.calls.Load(), time.Duration(m.busy.Load())
	s := callStats{Calls: calls}
	if calls > 0 && run > 0 {
		s.MeanCallMS = float64(busy) / float64(calls) / float64(time.Millisecond)
		s.MeanInFlight = busy.Seconds() / run.Seconds()
		s.InFlightShare = s.MeanInFlight / float64(concurrency)
		s.CallShare = float64(latency) / float64(time.Millisecond) / s.MeanCallMS
	}
	return s
}
