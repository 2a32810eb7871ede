package worker

import (
	"context"
	"errors"
	"time"

	"github.com/pathupdate/pathupdate/history"
)

// settledSeqs remembers, per waybill, the highest stream sequence this
// partition settled, so that a redelivery of an event settled already is
// recognised and acknowledged without calling WeChat a second time.
//
// Why it is needed: a lane settles a waybill's events in stream order, and
// an ack is confirmed before the lane moves on; yet a stream leader that is
// lost right after confirming an ack can come back without it (the new
// leader had not replicated it), and the message is redelivered after
// later events of its waybill were delivered. Delivering it again would
// show WeChat an older step after a newer one. Within one holder of the
// partition, a message of a waybill whose sequence is below one already
// settled for that waybill can only be such a redelivery: the lane never
// starts an event before every older one of its waybill was settled, and
// the takeover gate holds a new holder back until no one else holds older
// ones.
//
// Memory is bounded: two generations of at most limit waybills each; the
// older generation is dropped when the newer fills. A waybill forgotten
// that way has been quiet for a while, and what it costs is at worst a
// duplicate, the at-least-once the contract allows. Not safe for
// concurrent use: the partition guards it with its lock.
type settledSeqs struct {
	limit     int
	cur, prev map[string]uint64
}

// settledSeqsLimit bounds each generation of settledSeqs.
const settledSeqsLimit = 50_000

func newSettledSeqs(limit int) *settledSeqs {
	return &settledSeqs{limit: limit, cur: make(map[string]uint64), prev: map[string]uint64{}}
}

// note records that seq of waybill was settled.
func (s *settledSeqs) note(waybill string, seq uint64) {
	if seq <= s.cur[waybill] {
		return
	}
	if _, ok := s.cur[waybill]; !ok && len(s.cur) >= s.limit {
		s.prev, s.cur = s.cur, make(map[string]uint64, s.limit)
	}
	s.cur[waybill] = seq
}

// stale reports whether seq of waybill is below a sequence settled for
// the same waybill: a redelivery of an event settled already.
func (s *settledSeqs) stale(waybill string, seq uint64) bool {
	last, ok := s.cur[waybill]
	if !ok {
		last = s.prev[waybill]
	}
	return seq < last
}

// settledElsewhere asks the delivery history whether h, a redelivery of a
// waybill this holder has settled nothing of, was settled by an earlier
// holder of the partition whose ack was lost with a stream leader as the
// partition moved (a node lost: the case settledSeqs alone cannot see).
// Without the history, or when it cannot answer, the event is delivered:
// a duplicate at worst, the at-least-once the contract allows.
func (p *partition) settledElsewhere(h *held) bool {
	hs := p.w.historyStore
	if hs == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(p.softCtx, settledLookupTimeout)
	defer cancel()
	r, err := hs.Last(ctx, h.waybill)
	if err != nil {
		if !errors.Is(err, history.ErrNoRecord) {
			p.log.Debug().Err(err).Str("waybill", h.waybill).Uint64("seq", h.seq).Msg("history lookup of a redelivery failed: delivering it")
		}
		return false
	}
	return r.SettledBy(h.seq)
}

// settledLookupTimeout bounds the history lookup of one redelivery.
const settledLookupTimeout = 2 * time.Second

// knows reports whether s remembers a settled sequence of waybill.
func (s *settledSeqs) knows(waybill string) bool {
	if _, ok := s.cur[waybill]; ok {
		return true
	}
	_, ok := s.prev[waybill]
	return ok
}

// staleConfirmed checks h, a redelivery taken for an event settled already
// (its waybill has a later one settled), against what is known of h's own
// event, and reports whether it may be acked without a call.
//
// The inference from a later event holds only if every older event of the
// waybill went through a lane before it. A delivery lost in transit with a
// node breaks that: the later events come first, and the lost one comes
// back after AckWait looking like a redelivery of one settled already;
// acking it would lose it. So: settled by this worker (its window) or a
// record of its own delivery in the history: acked. Older than the window:
// the inference stands, nothing better is known. Otherwise it is
// delivered, late rather than lost (counted in Stats.DeliveredLate).
func (p *partition) staleConfirmed(h *held) bool {
	settled, known := p.w.settledWin.settled(h.seq)
	if settled || !known {
		return true
	}
	if hs := p.w.historyStore; hs != nil {
		ctx, cancel := context.WithTimeout(p.softCtx, settledLookupTimeout)
		ok, err := hs.Settled(ctx, h.waybill, h.seq)
		cancel()
		if ok {
			return true
		}
		if err != nil {
			p.log.Debug().Err(err).Str("waybill", h.waybill).Uint64("seq", h.seq).Msg("history lookup of an event's own delivery failed")
		}
	}
	p.w.stats.deliveredLate.Add(1)
	h.late = true
	p.log.Warn().Str("waybill", h.waybill).Uint64("seq", h.seq).
		Msg("an event came after a later one of its waybill was settled, and nothing shows it was settled itself (a delivery lost in transit): delivering it late rather than losing it")
	return false
}
