package retry

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// Action is what the worker does with a held event after one call (or,
// for an invalid event, instead of any call).
type Action int

const (
	// Ack: WeChat took the event. Acknowledge it.
	Ack Action = iota + 1
	// Retry: the event failed on its own; call again after Decision.Delay
	// (later events of the waybill wait behind it).
	Retry
	// Wait: the failure is not the event's (an outage, the access_token,
	// the credentials, a quota). Keep the event, spend none of its budget,
	// sleep Decision.Delay (0 when the breaker holds the next call anyway)
	// and call again through Breaker.Wait.
	Wait
	// DeadLetter: set the event aside in the dead-letter stream with
	// Decision.Reason, then ack the original.
	DeadLetter
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case Wait:
		return "wait"
	case DeadLetter:
		return "dead_letter"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Decision is the answer of Policy.Decide.
type Decision struct {
	Action Action
	// Reason is the dead-letter reason when Action is DeadLetter (one of
	// deadletter.Reasons), empty otherwise.
	Reason string
	// Delay is how long to wait before the next call when Action is Retry
	// or Wait.
	Delay time.Duration
	// Spent reports that this failure was the event's own and counts
	// against its budget: the caller adds one to Input.Attempts.
	Spent bool
}

func (d Decision) String() string {
	switch d.Action {
	case DeadLetter:
		return "dead_letter: " + d.Reason
	case Retry, Wait:
		return d.Action.String() + " in " + d.Delay.String()
	}
	return d.Action.String()
}

// Input is everything Decide looks at for one held event.
type Input struct {
	// Invalid is the decoding error of an event that breaks the wire
	// format; such an event is never sent, and Outcome and Verdict are
	// not looked at.
	Invalid error
	// Outcome is the answer to the call just made.
	Outcome pathupdate.Outcome
	// Verdict is what Breaker.Record made of Outcome.
	Verdict Verdict
	// Mark is Breaker.Worked as it was when this event's previous call
	// ended (for the first call: when it started). A failure is the
	// event's own only if the API has answered some other event since.
	Mark uint64
	// Attempts is how many of this event's failures were its own so far,
	// this one not included.
	Attempts int
	// Backoff is the event's retry delays (Policy.NewBackOff); drawn from
	// only when the answer is Retry. Nil gives the first interval.
	Backoff backoff.BackOff
	// Pause is a second sequence from Policy.NewBackOff, drawn from only
	// when the answer is Wait while the breaker still lets calls through,
	// so that waiting out a condition that is not the event's neither
	// hammers the API nor lengthens the event's own retry delays. Nil
	// gives the first interval.
	Pause backoff.BackOff
}

// Decide is the one place where the answer to a call becomes what the
// worker does with the event; the worker only carries it out.
//
// A failure spends the event's budget (MaxAttempts) only when it is the
// event's own: WeChat (or a gateway in front of it) answered this call
// with a transient failure (-1, HTTP 5xx, an answer that is not JSON)
// while the breaker stayed closed, and the API has answered another event
// since this event's previous call. Everything else — no answer at all
// (connection refused, DNS, TLS, a timeout), an access_token that could
// not be had or was refused, bad credentials, a quota, any failure while
// the breaker is open or that opened it, a failure while nothing else got
// through — is a condition every event would meet: the event waits and is
// never dead-lettered for it, however long it lasts.
func (p Policy) Decide(in Input) Decision {
	p = p.WithDefaults()
	if in.Invalid != nil {
		return Decision{Action: DeadLetter, Reason: deadletter.ReasonInvalidEvent}
	}
	o := in.Outcome
	switch o.Kind {
	case pathupdate.Delivered:
		return Decision{Action: Ack}
	case pathupdate.Rejected:
		return Decision{Action: DeadLetter, Reason: deadletter.ReasonRejected}
	case pathupdate.TokenInvalid, pathupdate.ConfigBroken, pathupdate.Throttled, pathupdate.Unavailable:
		return p.wait(in)
	}
	// Transient, and any Kind this package does not know: retrying can
	// neither lose the event nor, within the budget, loop forever.
	if !o.Answered() || in.Verdict.State != Closed || in.Verdict.Worked <= in.Mark {
		return p.wait(in)
	}
	if in.Attempts+1 >= p.MaxAttempts {
		return Decision{Action: DeadLetter, Reason: deadletter.ReasonRetriesExhausted, Spent: true}
	}
	b := in.Backoff
	if b == nil {
		b = p.NewBackOff()
	}
	d := b.NextBackOff()
	if d == backoff.Stop {
		// A caller-supplied BackOff with its own limit has spoken.
		return Decision{Action: DeadLetter, Reason: deadletter.ReasonRetriesExhausted, Spent: true}
	}
	return Decision{Action: Retry, Delay: d, Spent: true}
}

// wait answers a failure that is not the event's. An open breaker holds
// the next call by itself; a closed one lets it through at once, so the
// event sleeps a delay of its own meanwhile.
func (p Policy) wait(in Input) Decision {
	if in.Verdict.State != Closed {
		return Decision{Action: Wait}
	}
	b := in.Pause
	if b == nil {
		b = p.NewBackOff()
	}
	d := b.NextBackOff()
	if d == backoff.Stop {
		d = p.MaxInterval
	}
	return Decision{Action: Wait, Delay: d}
}
