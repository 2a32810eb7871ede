package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// meteredAPI wraps a Deliverer to split a delivery rate into Little's
// law's two factors: how many calls were in flight on average, and how
// long one call took as the caller saw it (rate = in flight / call time).
//
// It also records, per waybill, the gap between the end of one call and
// the start of the next: what a lane spends between two events of its
// waybill (confirming the ack, waiting for a call slot).
type meteredAPI struct {
	api   worker.Deliverer
	calls atomic.Int64
	busy  atomic.Int64 // nanoseconds spent in calls, summed over calls

	mu      sync.Mutex
	lastEnd map[string]time.Time
	gaps    map[string][]time.Duration
}

func newMeteredAPI(api worker.Deliverer) *meteredAPI {
	return &meteredAPI{api: api, lastEnd: map[string]time.Time{}, gaps: map[string][]time.Duration{}}
}

func (m *meteredAPI) UpdatePath(ctx context.Context, ev pathupdate.Event) pathupdate.Outcome {
	start := time.Now()
	m.mu.Lock()
	if end, ok := m.lastEnd[ev.WaybillID]; ok {
		m.gaps[ev.WaybillID] = append(m.gaps[ev.WaybillID], start.Sub(end))
	}
	m.mu.Unlock()
	o := m.api.UpdatePath(ctx, ev)
	end := time.Now()
	m.busy.Add(int64(end.Sub(start)))
	m.calls.Add(1)
	m.mu.Lock()
	m.lastEnd[ev.WaybillID] = end
	m.mu.Unlock()
	return o
}

// laneGaps are the gaps of one waybill's lane between consecutive calls.
type laneGaps struct {
	Gaps        int     `json:"gaps"`
	MeanMS      float64 `json:"mean_ms"`
	MedianMS    float64 `json:"median_ms"`
	LastTenthMS float64 `json:"last_tenth_mean_ms"` // the last 10% of them: for the hottest waybill, when little else runs
}

// gapsOf summarizes the gaps of waybill (all waybills when "").
func (m *meteredAPI) gapsOf(waybill string) laneGaps {
	m.mu.Lock()
	var ds []time.Duration
	if waybill != "" {
		ds = slices.Clone(m.gaps[waybill])
	} else {
		for _, g := range m.gaps {
			ds = append(ds, g...)
		}
	}
	m.mu.Unlock()
	g := laneGaps{Gaps: len(ds)}
	if len(ds) == 0 {
		return g
	}
	ms := func(xs []time.Duration) float64 {
		var sum time.Duration
		for _, x := range xs {
			sum += x
		}
		return float64(sum) / float64(len(xs)) / float64(time.Millisecond)
	}
	g.MeanMS = ms(ds)
	if waybill != "" {
		g.LastTenthMS = ms(ds[len(ds)-max(1, len(ds)/10):])
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	g.MedianMS = float64(sorted[len(sorted)/2]) / float64(time.Millisecond)
	return g
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
