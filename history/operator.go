package history

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// Operator records an operator's replays and purges (from the CLI or the
// console) in the delivery history, so that a waybill's timeline tells the
// whole story. A nil *Operator (no history stream) records nothing. The
// records are the operator's, so Worker is OperatorWorker.
type Operator struct {
	w   *Writer
	log zerolog.Logger
	now func() time.Time
}

// OperatorWorker is the Worker of the records an operator's action writes.
const OperatorWorker = "operator"

// OpenOperator returns nil when the history stream does not exist: an
// operator's action never creates it (workers do), and history may be
// off. now is the clock (nil: time.Now).
func OpenOperator(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, now func() time.Time) *Operator {
	if now == nil {
		now = time.Now
	}
	if _, err := js.Stream(ctx, Stream); err != nil {
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			log.Warn().Err(err).Msg("history: stream unavailable; this action's changes are not recorded in the delivery history")
		}
		return nil
	}
	w, err := NewWriter(js, WriterConfig{Logger: log})
	if err != nil {
		log.Warn().Err(err).Msg("history: not recorded")
		return nil
	}
	return &Operator{w: w, log: log, now: now}
}

// Replayed records one replayed dead letter (a ReplayOptions.Progress
// call), linking the copy (TraceSeq) to the original (OriginalSeq) and the
// dead letter.
func (h *Operator) Replayed(p deadletter.ReplayProgress) {
	if h == nil || p.Skipped != nil || p.TraceSeq == 0 {
		return
	}
	r := Record{State: Replayed, Seq: p.TraceSeq, ReplayOf: p.Record.OriginalSeq,
		DeadLetterSeq: p.Record.Seq, At: h.now(), Worker: OperatorWorker}
	h.w.Add(withEvent(r, p.Event, p.Record.WaybillID))
}

// BeforePurge lists the dead letters f selects, for Purged to record once
// they are gone. Records added between the two are purged unrecorded.
func (h *Operator) BeforePurge(ctx context.Context, st *deadletter.Store, f deadletter.Filter) ([]deadletter.Record, error) {
	if h == nil {
		return nil, nil
	}
	var doomed []deadletter.Record
	err := st.List(ctx, f, func(r deadletter.Record) error {
		doomed = append(doomed, r)
		return nil
	})
	return doomed, err
}

// Purged records each listed dead letter that is gone now.
func (h *Operator) Purged(ctx context.Context, st *deadletter.Store, doomed []deadletter.Record) {
	if h == nil {
		return
	}
	for _, d := range doomed {
		if _, err := st.Get(ctx, d.Seq); !errors.Is(err, deadletter.ErrNotFound) {
			continue // still there (the purge stopped early), or unknown
		}
		r := Record{State: Purged, Seq: d.OriginalSeq, DeadLetterSeq: d.Seq, Reason: d.Reason,
			ErrCode: d.ErrCode, At: h.now(), Worker: OperatorWorker}
		h.w.Add(withEvent(r, d.Event, d.WaybillID))
	}
}

// withEvent fills r's event fields from the event bytes, and its waybill.
func withEvent(r Record, event []byte, waybill string) Record {
	if ev, err := pathupdate.DecodeEvent(event); err == nil {
		r = r.FromEvent(ev)
	}
	r.WaybillID = waybill
	return r
}

// Close writes what is buffered.
func (h *Operator) Close() {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.w.Close(ctx); err != nil || h.w.Dropped() > 0 {
		h.log.Warn().Err(err).Uint64("dropped", h.w.Dropped()).Msg("history: some records of this action were not written")
	}
}
