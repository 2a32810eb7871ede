package worker

import (
	"slices"
	"sync/atomic"

	"github.com/pathupdate/pathupdate/deadletter"
)

// counters are the worker's running totals, read by Stats.
type counters struct {
	received            atomic.Uint64
	delivered           atomic.Uint64
	deliveredAfterRetry atomic.Uint64
	retries             atomic.Uint64
	paused              atomic.Uint64
	invalid             atomic.Uint64
	dlRejected          atomic.Uint64
	dlInvalid           atomic.Uint64
	dlExhausted         atomic.Uint64
	redeliveriesMerged  atomic.Uint64
	handedBack          atomic.Uint64
	staleAcked          atomic.Uint64
	deliveredLate       atomic.Uint64
	pinsLost            atomic.Uint64
}

func (c *counters) deadLettered(reason string) {
	switch reason {
	case deadletter.ReasonRejected:
		c.dlRejected.Add(1)
	case deadletter.ReasonInvalidEvent:
		c.dlInvalid.Add(1)
	default:
		c.dlExhausted.Add(1)
	}
}

// totals are what the worker has delivered and dead-lettered so far.
func (w *Worker) totals() (delivered, deadLettered uint64) {
	c := &w.stats
	return c.delivered.Load(), c.dlRejected.Load() + c.dlInvalid.Load() + c.dlExhausted.Load()
}

// Stats is a snapshot of what a worker has done since it started.
type Stats struct {
	Received            uint64 // messages taken from JetStream (redeliveries of held ones excluded)
	Delivered           uint64 // acked after WeChat took them
	DeliveredAfterRetry uint64 // of Delivered, those that needed more than one call
	Retries             uint64 // transient failures retried
	Paused              uint64 // failures that were not the event's fault
	DeadLettered        map[string]uint64
	RedeliveriesMerged  uint64 // redeliveries of a message already held
	HandedBack          uint64 // Nak'ed at shutdown for another worker
	StaleAcked          uint64 // redeliveries of events settled already (an ack lost with a stream leader), acked without a call
	DeliveredLate       uint64 // events that came after a later one of their waybill was settled and were not settled themselves: delivered out of order rather than lost (settled.go)
	PinsLost            uint64 // partitions released because their pin moved to another worker while this one held messages (pinmoved.go)
	Held                int    // messages held now
	Lanes               int    // waybills with held messages now
	Partitions          []int  // partitions this worker holds now
}

// Stats returns a snapshot of the worker's counters.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	heldN, lanes := 0, 0
	parts := make([]int, 0, len(w.parts))
	for n, p := range w.parts {
		h, l := p.counts()
		heldN, lanes = heldN+h, lanes+l
		parts = append(parts, n)
	}
	w.mu.Unlock()
	slices.Sort(parts)
	c := &w.stats
	return Stats{
		Received:            c.received.Load(),
		Delivered:           c.delivered.Load(),
		DeliveredAfterRetry: c.deliveredAfterRetry.Load(),
		Retries:             c.retries.Load(),
		Paused:              c.paused.Load(),
		DeadLettered: map[string]uint64{
			deadletter.ReasonRejected:         c.dlRejected.Load(),
			deadletter.ReasonInvalidEvent:     c.dlInvalid.Load(),
			deadletter.ReasonRetriesExhausted: c.dlExhausted.Load(),
		},
		RedeliveriesMerged: c.redeliveriesMerged.Load(),
		HandedBack:         c.handedBack.Load(),
		StaleAcked:         c.staleAcked.Load(),
		DeliveredLate:      c.deliveredLate.Load(),
		PinsLost:           c.pinsLost.Load(),
		Held:               heldN,
		Lanes:              lanes,
		Partitions:         parts,
	}
}
