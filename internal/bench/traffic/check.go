package traffic

import (
	"slices"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

// Order is what the sandbox received of a plan, judged per waybill.
type Order struct {
	Events     int `json:"events"`     // in the plan
	Delivered  int `json:"delivered"`  // distinct events answered errcode 0
	Missing    int `json:"missing"`    // events never delivered
	Duplicates int `json:"duplicates"` // deliveries of an event already delivered (at least once allows them)
	// Violations counts deliveries of an event after a later event of
	// the same waybill had already been delivered: the buyer saw the
	// trace out of order.
	Violations int `json:"violations"`
	// WaybillsViolated is how many waybills had at least one violation.
	WaybillsViolated int `json:"waybills_violated"`
}

// Recorder is the part of a sandbox the check reads: *sandbox.Sandbox
// and *sandbox.Server are ones.
type Recorder interface {
	Delivered(waybillID string) []sandbox.Call
}

// Check judges what rec received of p. A redelivered event that arrives
// after a later one counts as a duplicate, not a violation, only if it had
// already been delivered before that later one: the trace the buyer saw
// was then in order.
func (p *Plan) Check(rec Recorder) Order {
	o := Order{Events: len(p.Items)}
	for w, id := range p.Waybills {
		if p.Counts[w] == 0 {
			continue
		}
		seen := make([]bool, p.Counts[w])
		highest, violated := -1, false
		for _, c := range rec.Delivered(id) {
			i := IndexOf(c.ActionTime)
			if i < 0 || i >= len(seen) {
				continue // not ours
			}
			switch {
			case seen[i]:
				o.Duplicates++
			case i < highest:
				o.Violations++
				violated = true
				seen[i] = true
				o.Delivered++
			default:
				seen[i] = true
				o.Delivered++
			}
			highest = max(highest, i)
		}
		if violated {
			o.WaybillsViolated++
		}
	}
	o.Missing = o.Events - o.Delivered
	return o
}

// Arrivals returns, for each item of p in stream order, when the sandbox
// first received it delivered (zero if never).
func (p *Plan) Arrivals(rec Recorder) []time.Time {
	first := make([][]time.Time, len(p.Waybills))
	for w, id := range p.Waybills {
		if p.Counts[w] == 0 {
			continue
		}
		first[w] = make([]time.Time, p.Counts[w])
		for _, c := range rec.Delivered(id) {
			if i := IndexOf(c.ActionTime); i >= 0 && i < len(first[w]) && first[w][i].IsZero() {
				first[w][i] = c.At
			}
		}
	}
	out := make([]time.Time, len(p.Items))
	for k, it := range p.Items {
		out[k] = first[it.Waybill][it.Index]
	}
	return out
}

// Hottest is how the waybill with the most events fared against the rest.
type Hottest struct {
	Waybill string `json:"waybill"`
	Events  int    `json:"events"`
	// OthersDoneAfter is when every other waybill's last event had been
	// delivered, HotDoneAfter when the hottest's had, both from start.
	OthersDoneAfter time.Duration `json:"others_done_after_ns"`
	HotDoneAfter    time.Duration `json:"hot_done_after_ns"`
	// HotDeliveredByOthersDone is how many of the hottest waybill's
	// events had been delivered when the others were done: a pipeline
	// that kept the hottest waybill's lane busy from the start has most
	// of them behind it by then.
	HotDeliveredByOthersDone int `json:"hot_delivered_by_others_done"`
}

// HottestProgress reads from rec how the hottest waybill of p progressed
// compared with all others, times measured from start.
func (p *Plan) HottestProgress(rec Recorder, start time.Time) Hottest {
	hot := slices.Index(p.Counts, p.MaxPerWaybill())
	arrivals := p.Arrivals(rec)
	var othersDone, hotDone time.Time
	var hotTimes []time.Time
	for k, it := range p.Items {
		a := arrivals[k]
		if it.Waybill == hot {
			hotTimes = append(hotTimes, a)
			if a.After(hotDone) {
				hotDone = a
			}
		} else if a.After(othersDone) {
			othersDone = a
		}
	}
	h := Hottest{Waybill: p.Waybills[hot], Events: p.Counts[hot], OthersDoneAfter: othersDone.Sub(start), HotDoneAfter: hotDone.Sub(start)}
	for _, a := range hotTimes {
		if !a.IsZero() && !a.After(othersDone) {
			h.HotDeliveredByOthersDone++
		}
	}
	return h
}

// FirstArrival is when the first event of p reached rec (zero if none did):
// where a drain's clock starts, so that a worker's start-up is measured
// apart from its pace.
func (p *Plan) FirstArrival(rec Recorder) time.Time {
	var first time.Time
	for _, a := range p.Arrivals(rec) {
		if !a.IsZero() && (first.IsZero() || a.Before(first)) {
			first = a
		}
	}
	return first
}
