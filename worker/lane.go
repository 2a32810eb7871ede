package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// held is one message this worker has taken from JetStream and not yet
// settled (acked, dead-lettered or handed back).
type held struct {
	msg     jetstream.Msg // the newest delivery; guarded by Worker.mu
	seq     uint64        // stream sequence: the message's identity
	subject string
	waybill string
}

// lane is the FIFO of one waybill's held messages. Exactly one goroutine
// works a lane at a time; it exits when the lane is empty, so idle waybills
// cost nothing.
type lane struct {
	waybill string
	queue   []*held
}

// handle is called by the JetStream consumer, serially, for each message.
// It never blocks on delivery: it files the message into its waybill's lane.
func (w *Worker) handle(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack, nothing to lose.
		w.log.Error().Err(err).Msg("message without JetStream metadata")
		return
	}
	seq := meta.Sequence.Stream
	subject := msg.Subject()

	w.mu.Lock()
	if w.handedBack {
		// Stop has already handed back what it held; this one arrived late.
		w.mu.Unlock()
		w.stats.handedBack.Add(1)
		_ = msg.Nak()
		return
	}
	if h, ok := w.held[seq]; ok {
		// JetStream redelivered a message we still hold (a keep-alive was
		// late). Keep its place in the lane; answer the newest delivery.
		h.msg = msg
		w.mu.Unlock()
		w.stats.redeliveriesMerged.Add(1)
		return
	}
	h := &held{msg: msg, seq: seq, subject: subject, waybill: pathupdate.WaybillFromSubject(subject)}
	w.held[seq] = h
	if w.stopping {
		// Drained from the client's buffer during Stop: Stop hands it back
		// with the rest, in stream order.
		w.mu.Unlock()
		return
	}
	ln, ok := w.lanes[h.waybill]
	if !ok {
		ln = &lane{waybill: h.waybill}
		w.lanes[h.waybill] = ln
		w.lanesWG.Add(1)
		go w.runLane(ln)
	}
	ln.queue = append(ln.queue, h)
	w.mu.Unlock()
	w.stats.received.Add(1)
}

// runLane settles the lane's messages one after another, in arrival order.
func (w *Worker) runLane(ln *lane) {
	defer w.lanesWG.Done()
	for {
		w.mu.Lock()
		if len(ln.queue) == 0 {
			delete(w.lanes, ln.waybill)
			w.mu.Unlock()
			return
		}
		h := ln.queue[0]
		w.mu.Unlock()

		err := w.settle(h)

		w.mu.Lock()
		if err != nil {
			// Stopping: leave the head and all behind it held; Stop hands
			// every held message back at once, in stream order.
			ln.queue = nil
			delete(w.lanes, ln.waybill)
			w.mu.Unlock()
			return
		}
		ln.queue[0] = nil
		ln.queue = ln.queue[1:]
		delete(w.held, h.seq)
		w.mu.Unlock()
	}
}

// attempt is what a settle loop knows about its event's delivery so far.
type attempt struct {
	calls   int // API calls made
	counted int // failures that were the event's own (breaker closed)
	first   time.Time
	last    time.Time
	outcome pathupdate.Outcome
}

// settle delivers h, retrying as the policy says, until it is acked or
// dead-lettered. It returns errStopping when the worker stops first.
func (w *Worker) settle(h *held) error {
	w.mu.Lock()
	data := h.msg.Data()
	w.mu.Unlock()

	ev, err := pathupdate.DecodeEvent(data)
	if err == nil && ev.WaybillID != h.waybill {
		err = fmt.Errorf("%w: waybill_id %q in the body differs from %q in the subject", pathupdate.ErrInvalidEvent, ev.WaybillID, h.waybill)
	}
	if err != nil {
		w.stats.invalid.Add(1)
		now := w.cfg.Now()
		return w.deadLetter(h, retry.ReasonInvalidEvent, attempt{first: now, last: now,
			outcome: pathupdate.Outcome{ErrMsg: err.Error()}})
	}

	var bo backoff.BackOff = w.cfg.Retry.NewBackOff()
	var a attempt
	for {
		if err := w.breaker.Wait(w.softCtx); err != nil {
			return errStopping
		}
		select {
		case w.sem <- struct{}{}:
		case <-w.softCtx.Done():
			w.breaker.Release()
			return errStopping
		}
		a.last = w.cfg.Now()
		if a.first.IsZero() {
			a.first = a.last
		}
		a.calls++
		o := w.api.UpdatePath(w.callCtx, ev)
		<-w.sem
		w.cfg.Observer.APICall(o, w.cfg.Now().Sub(a.last))
		if w.callCtx.Err() != nil {
			w.breaker.Release()
			return errStopping
		}
		a.outcome = o
		counted := w.breaker.Record(o)
		if o.Kind == pathupdate.Transient && counted {
			a.counted++
		}

		if o.Kind == pathupdate.Transient && !counted {
			// The breaker opened: the API fails for everything, not for this
			// event. Wait for the breaker, spend no budget.
			w.logFailure(h, ev, a, "paused: API failing for every event")
			continue
		}
		d := w.cfg.Retry.Decide(o, a.counted, bo)
		switch d.Action {
		case retry.Ack:
			w.mu.Lock()
			m := h.msg
			w.mu.Unlock()
			if err := m.Ack(); err != nil {
				// The event is delivered; if the ack is lost JetStream
				// redelivers it and WeChat sees it twice (at least once).
				w.log.Warn().Err(err).Uint64("seq", h.seq).Msg("ack")
			}
			w.stats.delivered.Add(1)
			if a.calls > 1 {
				w.stats.deliveredAfterRetry.Add(1)
			}
			w.cfg.Observer.Settled(Settlement{Delivered: true, Outcome: o, Attempts: a.calls, Published: published(m), At: w.cfg.Now()})
			return nil
		case retry.DeadLetter:
			w.logFailure(h, ev, a, "dead-lettered: "+d.Reason)
			return w.deadLetter(h, d.Reason, a)
		case retry.Retry:
			w.stats.retries.Add(1)
			w.cfg.Observer.Retried(o)
			w.logFailure(h, ev, a, fmt.Sprintf("retrying in %s", d.Delay.Round(time.Millisecond)))
			if !w.wait(d.Delay) {
				return errStopping
			}
		case retry.Pause:
			w.stats.paused.Add(1)
			w.logFailure(h, ev, a, "paused: not the event's fault")
			if w.breaker.State() == retry.Closed {
				// Not open yet: do not hammer the API meanwhile.
				if !w.wait(bo.NextBackOff()) {
					return errStopping
				}
			}
		}
	}
}

// wait sleeps d unless the worker stops first; it reports whether it slept.
func (w *Worker) wait(d time.Duration) bool {
	if d <= 0 {
		return w.softCtx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.softCtx.Done():
		return false
	}
}

// deadLetter stores h's dead letter, waits for the PubAck, then acks the
// original. A crash in between redelivers the original; the dead letter's
// Nats-Msg-Id (from the original sequence) makes the second write a
// duplicate, not a second record.
func (w *Worker) deadLetter(h *held, reason string, a attempt) error {
	w.mu.Lock()
	m := h.msg
	w.mu.Unlock()
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
	if n, err := deadletter.ReplaysOf(m.Headers()); err == nil {
		rec.Replays = n // a malformed header from a foreign producer counts as never replayed
	}
	if rec.ErrMsg == "" && a.outcome.Err != nil {
		rec.ErrMsg = a.outcome.Err.Error()
	}
	bo := backoff.NewExponentialBackOff()
	bo.MaxElapsedTime = 0
	bo.MaxInterval = 5 * time.Second
	for {
		ctx, cancel := context.WithTimeout(w.softCtx, 10*time.Second)
		err := w.dl.Write(ctx, rec)
		cancel()
		if err == nil {
			break
		}
		if w.softCtx.Err() != nil {
			return errStopping
		}
		w.log.Error().Err(err).Str("waybill", h.waybill).Uint64("seq", h.seq).Msg("dead-letter write failed; will try again")
		if !w.wait(bo.NextBackOff()) {
			return errStopping
		}
	}
	w.mu.Lock()
	m = h.msg
	w.mu.Unlock()
	if err := m.Ack(); err != nil {
		w.log.Warn().Err(err).Uint64("seq", h.seq).Msg("ack after dead letter")
	}
	w.stats.deadLettered(reason)
	w.cfg.Observer.Settled(Settlement{Reason: reason, Outcome: a.outcome, Attempts: a.calls, Published: published(m), At: w.cfg.Now()})
	return nil
}

// published is when JetStream stored m (zero if unknown).
func published(m jetstream.Msg) time.Time {
	if meta, err := m.Metadata(); err == nil {
		return meta.Timestamp
	}
	return time.Time{}
}

// logFailure writes the one line a delivery failure gets. The event's
// token is never logged.
func (w *Worker) logFailure(h *held, ev pathupdate.Event, a attempt, what string) {
	o := a.outcome
	e := w.log.Warn().Str("waybill", ev.WaybillID).Uint64("seq", h.seq).
		Int("attempt", a.calls).Str("outcome", o.Kind.String()).Int("errcode", o.ErrCode)
	if o.ErrMsg != "" {
		e = e.Str("errmsg", o.ErrMsg)
	}
	if o.HTTPStatus != 0 {
		e = e.Int("http_status", o.HTTPStatus)
	}
	if o.Err != nil {
		e = e.AnErr("cause", o.Err)
	}
	e.Msg(what)
}
