package worker

import (
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// HistoryWriter takes delivery history records; *history.Writer is one.
// Add must never block: a lane calls it between two events.
type HistoryWriter interface {
	Add(r history.Record)
}

// remember tells the history what became of h after decision d: a retry,
// a delivery or a dead letter (dlSeq, its sequence in the dead-letter
// stream). Nothing is recorded without a HistoryWriter.
func (p *partition) remember(h *held, ev pathupdate.Event, d retry.Decision, a attempt, dlSeq uint64) {
	hw := p.w.cfg.History
	if hw == nil {
		return
	}
	now := p.w.cfg.Now()
	r := history.Record{
		Seq:          h.seq,
		Attempts:     a.calls,
		ErrCode:      a.outcome.ErrCode,
		ErrMsg:       a.outcome.ErrMsg,
		FirstAttempt: a.first,
		At:           now,
		Worker:       p.w.cfg.MemberID,
	}.FromEvent(ev)
	r.WaybillID = h.waybill // an invalid event's body may name none
	if a.outcome.Kind != 0 {
		r.Outcome = a.outcome.Kind.String()
	}
	if r.ErrMsg == "" && a.outcome.Err != nil {
		r.ErrMsg = a.outcome.Err.Error()
	}
	switch d.Action {
	case retry.Ack:
		r.State = history.Delivered
		if pub := a.published; !pub.IsZero() && now.After(pub) {
			r.LatencyMS = now.Sub(pub).Milliseconds()
		}
	case retry.DeadLetter:
		r.State, r.Reason, r.DeadLetterSeq = history.DeadLettered, d.Reason, dlSeq
	case retry.Retry:
		r.State, r.NextAttempt = history.Retrying, now.Add(d.Delay)
	default:
		return // waiting out a condition that is not the event's: nothing happened to it
	}
	hw.Add(r)
}
