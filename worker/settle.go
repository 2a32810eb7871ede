package worker

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// attempt is what a settle loop knows about its event's delivery so far,
// for logs, dead letters and metrics.
type attempt struct {
	calls   int // API calls made
	first   time.Time
	last    time.Time
	outcome pathupdate.Outcome
	// published is when JetStream stored the event, read once it is
	// delivered (for the observer's latency and the history's).
	published time.Time
	span      trace.Span      // the settle span; nil when tracing is off (tracing.go)
	ctx       context.Context // span's context, under callCtx: the API calls' parent
	result    string          // how it was settled, for the span
}

// settle delivers h until it is acked or dead-lettered, doing what
// retry.Policy.Decide says after every call; it decides nothing itself.
// It returns errStopping when the worker stops first.
func (p *partition) settle(h *held, slot *bool) error {
	w := p.w
	ev, invalid := p.decode(h)
	// The delay sequences are made at the first failure: most events are
	// delivered at the first call and never draw from them.
	in := retry.Input{Invalid: invalid}
	var a attempt
	a.ctx, a.span = p.startSettle(h)
	defer endSettle(h, &a)
	if invalid != nil {
		w.stats.invalid.Add(1)
		now := w.cfg.Now()
		a.first, a.last, a.outcome = now, now, pathupdate.Outcome{ErrMsg: invalid.Error()}
		_, err := p.carryOut(h, ev, w.cfg.Retry.Decide(in), &a)
		return err
	}
	in.Mark = w.breaker.Worked()
	for {
		o, err := p.call(ev, &a, h.backlog, slot)
		if err != nil {
			return err
		}
		if o.Kind != pathupdate.Delivered && in.Backoff == nil {
			in.Backoff, in.Pause = w.cfg.Retry.NewBackOff(), w.cfg.Retry.NewBackOff()
		}
		in.Outcome, in.Verdict = o, w.recordOutcome(o)
		d := w.cfg.Retry.Decide(in)
		in.Mark = in.Verdict.Worked
		if d.Spent {
			in.Attempts++
		}
		if done, err := p.carryOut(h, ev, d, &a); done || err != nil {
			return err
		}
	}
}

// ackStale acknowledges h, an event this partition settled before whose
// ack was lost with a stream leader (see settledSeqs): WeChat has it, and
// has later steps of its waybill since.
func (p *partition) ackStale(h *held, _ *bool) error {
	p.w.stats.staleAcked.Add(1)
	p.log.Info().Str("waybill", h.waybill).Uint64("seq", h.seq).
		Msg("redelivery of an event settled already (its ack was lost): acked without calling WeChat again")
	if err := p.ack(h); err != nil {
		return errStopping
	}
	return nil
}

// decode reads h's event; an error is an invalid event. Replay checks
// with the same function before it republishes a dead letter.
func (p *partition) decode(h *held) (pathupdate.Event, error) {
	return pathupdate.DecodeEventFor(p.msgOf(h).Data(), h.waybill)
}

// call makes one API call through the breaker and the concurrency limit
// (a lane with backlog events behind this one) and records it in a. It
// returns errStopping when the partition is released first. *slot is the
// lane's call slot: held from its last call (callSlots.releaseOrKeep), the call
// uses it; after a delivery that leaves the lane's next event first in
// line for a slot, the lane keeps it (*slot true), else it is released.
func (p *partition) call(ev pathupdate.Event, a *attempt, backlog int, slot *bool) (pathupdate.Outcome, error) {
	w := p.w
	// An operator's pause, a spent daily quota and the rate limit hold the
	// call back before the breaker does; no wait is an attempt.
	if err := w.waitOperatorPause(p.softCtx); err != nil {
		return pathupdate.Outcome{}, errStopping
	}
	if !w.waitQuota(p.softCtx) || !w.waitRate(p.softCtx) {
		return pathupdate.Outcome{}, errStopping
	}
	if err := w.breaker.Wait(p.softCtx); err != nil {
		return pathupdate.Outcome{}, errStopping
	}
	if *slot {
		*slot = false
	} else if err := w.slots.acquire(p.softCtx, backlog); err != nil {
		w.breaker.Release()
		return pathupdate.Outcome{}, errStopping
	}
	a.last = w.cfg.Now()
	if a.first.IsZero() {
		a.first = a.last
	}
	a.calls++
	ctx, span := p.startCall(a)
	o := w.callers.call(ctx, ev)
	endCall(span, a.calls, o)
	if o.Kind == pathupdate.Delivered && backlog > 0 {
		*slot = w.slots.releaseOrKeep(backlog - 1) // runLane releases a kept one if the lane stops first
	} else {
		w.slots.release()
	}
	w.cfg.Observer.APICall(o, w.cfg.Now().Sub(a.last))
	if p.callCtx.Err() != nil {
		w.breaker.Release()
		return pathupdate.Outcome{}, errStopping
	}
	a.outcome = o
	return o, nil
}

// carryOut does what d says with h. done reports that h is settled (acked
// or dead-lettered); err is errStopping when the partition is released
// first.
func (p *partition) carryOut(h *held, ev pathupdate.Event, d retry.Decision, a *attempt) (done bool, err error) {
	w := p.w
	switch d.Action {
	case retry.Ack:
		w.stats.delivered.Add(1)
		if a.calls > 1 {
			w.stats.deliveredAfterRetry.Add(1)
		}
		a.published = h.published
		w.cfg.Observer.Settled(Settlement{Delivered: true, Outcome: a.outcome, Attempts: a.calls, Published: a.published, At: w.cfg.Now(), Late: h.late})
		p.remember(h, ev, d, *a, 0)
		a.result = "delivered"
		if err := p.ack(h); err != nil {
			return true, errStopping // delivered, not acked: it comes back (at least once)
		}
		return true, nil
	case retry.DeadLetter:
		p.logFailure(h, *a, "dead-lettered: "+d.Reason)
		seq, err := p.deadLetter(h, d.Reason, *a)
		if err == nil {
			a.result = "dead_lettered: " + d.Reason
			p.remember(h, ev, d, *a, seq)
		}
		return true, err
	case retry.Retry:
		p.remember(h, ev, d, *a, 0)
		w.stats.retries.Add(1)
		w.cfg.Observer.Retried(a.outcome)
		p.logFailure(h, *a, fmt.Sprintf("retrying in %s", d.Delay.Round(time.Millisecond)))
	case retry.Wait:
		w.stats.paused.Add(1)
		if d.Delay == 0 {
			p.logFailure(h, *a, "paused: the API fails for every event; waiting for the circuit breaker")
		} else {
			p.logFailure(h, *a, fmt.Sprintf("paused: not the event's fault; trying again in %s", d.Delay.Round(time.Millisecond)))
		}
	default:
		return false, fmt.Errorf("worker: retry decided %s, which the worker cannot carry out", d)
	}
	if !p.wait(d.Delay) {
		return false, errStopping
	}
	return false, nil
}

// wait sleeps d unless the partition is released first; it reports
// whether it slept.
func (p *partition) wait(d time.Duration) bool {
	if d <= 0 {
		return p.softCtx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.softCtx.Done():
		return false
	}
}

// deadLetter stores h's dead letter, waits for the PubAck, then acks the
// original. A crash in between redelivers the original; the dead letter's
// Nats-Msg-Id (from the original sequence) makes the second write a
// duplicate, not a second record.
func (p *partition) deadLetter(h *held, reason string, a attempt) (seq uint64, err error) {
	w := p.w
	m := p.msgOf(h)
	rec := deadletter.Record{
		Event:           m.Data(),
		WaybillID:       h.waybill,
		Reason:          reason,
		ErrCode:         a.outcome.ErrCode,
		ErrMsg:          a.outcome.ErrMsg,
		Attempts:        a.calls,
		OriginalSubject: h.subject,
		OriginalSeq:     h.seq,
		FirstAttempt:    a.first,
		LastAttempt:     a.last,
		FailedAt:        w.cfg.Now(),
	}
	rec.TraceParent, rec.TraceState = p.traceContextOf(h, a)
	if n, err := deadletter.ReplaysOf(m.Headers()); err == nil {
		rec.Replays = n // a malformed header from a foreign producer counts as never replayed
	}
	if rec.ErrMsg == "" && a.outcome.Err != nil {
		rec.ErrMsg = a.outcome.Err.Error()
	}
	err = retry.Until(p.softCtx, deadLetterRetry(p, h), func(ctx context.Context) error {
		var err error
		seq, err = w.dl.Append(ctx, rec)
		return err
	})
	if err != nil {
		return 0, errStopping // only the release ends the loop
	}
	if err := p.ack(h); err != nil {
		// Stored, not acked: it comes back, and the dead letter's
		// Nats-Msg-Id makes its second write a duplicate.
		return 0, errStopping
	}
	w.stats.deadLettered(reason)
	w.cfg.Observer.Settled(Settlement{Reason: reason, Outcome: a.outcome, Attempts: a.calls, Published: h.published, At: w.cfg.Now(), Late: h.late})
	return seq, nil
}

// logFailure writes the one line a delivery failure gets. The event's
// token is never logged; errmsg and cause may quote the event (WeChat's or
// the cloud function's errmsg, a decoding error), so phone numbers in them
// are masked. The waybill is the subject's, which a valid event's body
// repeats (an invalid event may have none).
func (p *partition) logFailure(h *held, a attempt, what string) {
	o := a.outcome
	e := p.log.Warn().Str("waybill", h.waybill).Uint64("seq", h.seq).Int("attempt", a.calls)
	if o.Kind != 0 { // 0: an invalid event, never sent
		e = e.Str("outcome", o.Kind.String())
	}
	if o.ErrCode != 0 || o.HTTPStatus == http.StatusOK {
		// Only an answer has an errcode: a failed token fetch or a
		// connection error logged with "errcode":0 reads as a success.
		e = e.Int("errcode", o.ErrCode)
	}
	if o.ErrMsg != "" {
		e = e.Str("errmsg", pathupdate.MaskPhones(o.ErrMsg))
	}
	if o.HTTPStatus != 0 {
		e = e.Int("http_status", o.HTTPStatus)
	}
	if o.Err != nil {
		e = e.AnErr("cause", pathupdate.MaskPhonesError(o.Err))
	}
	if id := p.traceIDOf(h, a); id != "" {
		e = e.Str("trace_id", id)
	}
	e.Msg(what)
}

// ack acknowledges h and waits for the server to confirm it before the
// lane moves on, trying again until it is confirmed (a cluster electing a
// new leader can drop one). A lost ack would bring an event back after the
// next one of its waybill was delivered; a confirmed ack leaves only the
// event in flight to be redelivered, ahead of the rest. A soft release
// does not interrupt it (the event is delivered: handing it back would
// deliver it twice); only the release timeout does, and then the event
// goes back with the others, in order (at least once).
func (p *partition) ack(h *held) error {
	return retry.Until(p.callCtx, retry.UntilConfig{
		Initial: 50 * time.Millisecond, Max: 2 * time.Second,
		OnFailure: func(err error, _ int, _ time.Duration) {
			p.log.Warn().Err(err).Uint64("seq", h.seq).Msg("ack not confirmed; trying again")
		},
	}, func(ctx context.Context) error {
		return p.confirmer.ack(ctx, p.ackSent(h).Reply(), h.seq, ackConfirmTimeout)
	})
}

// ackSent notes that h is being acked and returns its newest delivery, the
// one to ack: from the first ack on, the takeover gate no longer counts h
// as ours (partitionCounts.Ours).
func (p *partition) ackSent(h *held) kept {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !h.acked {
		h.acked = true
		p.acks++
		p.acking++
	}
	return h.msg
}

// ackConfirmTimeout bounds the wait for one ack's confirmation; a
// confirmation lost (a leader change) is asked for again after it.
const ackConfirmTimeout = 5 * time.Second

// deadLetterRetry is how a dead letter's write is tried again: until it is
// stored (a full or missing stream is fixed by an operator) or the
// partition is released.
func deadLetterRetry(p *partition, h *held) retry.UntilConfig {
	return retry.UntilConfig{
		Initial: 500 * time.Millisecond, Multiplier: 1.5, Max: 5 * time.Second, AttemptTimeout: 10 * time.Second,
		OnFailure: func(err error, _ int, _ time.Duration) {
			p.log.Error().Err(err).Str("waybill", h.waybill).Uint64("seq", h.seq).Msg("dead-letter write failed; will try again")
		},
	}
}
