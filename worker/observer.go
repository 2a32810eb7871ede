package worker

import (
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// Observer is told what the worker does, for metrics. Its methods are
// called from the worker's goroutines and must be quick and never block.
type Observer interface {
	// APICall is one logistics.updatePath call and how long it took.
	APICall(o pathupdate.Outcome, took time.Duration)
	// Retried is an event that will be called again after a delay.
	Retried(o pathupdate.Outcome)
	// Settled is an event done with, delivered or dead-lettered, as s
	// describes it.
	Settled(s Settlement)
	// BreakerChanged is the circuit breaker moving between states.
	BreakerChanged(from, to retry.BreakerState)
}

// Settlement describes one settled event.
type Settlement struct {
	Delivered bool   // acked after WeChat accepted it
	Reason    string // the dead-letter reason when not Delivered
	// Outcome is the last API answer; an invalid event, never sent, has
	// Outcome.Kind 0.
	Outcome  pathupdate.Outcome
	Attempts int // API calls made for it
	// Published is when JetStream stored the message (zero if unknown),
	// for end-to-end latency.
	Published time.Time
	At        time.Time // when it was settled
	// Late: it came after a later event of its waybill was settled, and
	// nothing showed it settled itself (a delivery lost in transit with a
	// node), so it was settled out of order rather than lost.
	Late bool
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) APICall(pathupdate.Outcome, time.Duration)  {}
func (NopObserver) Retried(pathupdate.Outcome)                 {}
func (NopObserver) Settled(Settlement)                         {}
func (NopObserver) BreakerChanged(from, to retry.BreakerState) {}
