package cli

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// operatorHistory records an operator's replays and purges in the delivery
// history, so that `pathupdate trace` tells the whole story. A nil
// *operatorHistory (no history stream) records nothing. The records are
// the operator's, so Worker is "operator".
type operatorHistory struct {
	w   *history.Writer
	log zerolog.Logger
	now func() time.Time
}

// operatorWorker is the Worker of the records an operator's command writes.
const operatorWorker = "operator"

// openOperatorHistory returns nil when the history stream does not exist:
// a command never creates it (workers do), and history may be off.
func openOperatorHistory(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) *operatorHistory {
	if _, err := js.Stream(ctx, history.Stream); err != nil {
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			log.Warn().Err(err).Msg("history: stream unavailable; this command's changes are not recorded in the delivery history")
		}
		return nil
	}
	w, err := history.NewWriter(js, history.WriterConfig{Logger: log})
	if err != nil {
		log.Warn().Err(err).Msg("history: not recorded")
		return nil
	}
	return &operatorHistory{w: w, log: log, now: time.Now}
}

// replayed records one replayed dead letter, linking the copy (TraceSeq) to
// the original (OriginalSeq) and the dead letter.
func (h *operatorHistory) replayed(p deadletter.ReplayProgress) {
	if h == nil || p.Skipped != nil || p.TraceSeq == 0 {
		return
	}
	r := history.Record{State: history.Replayed, Seq: p.TraceSeq, ReplayOf: p.Record.OriginalSeq,
		DeadLetterSeq: p.Record.Seq, At: h.now(), Worker: operatorWorker}
	h.w.Add(withEvent(r, p.Event, p.Record.WaybillID))
}

// beforePurge lists the dead letters f selects, for purged to record once
// they are gone. Records added between the two are purged unrecorded.
func (h *operatorHistory) beforePurge(ctx context.Context, st *deadletter.Store, f deadletter.Filter) ([]deadletter.Record, error) {
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

// purged records each listed dead letter that is gone now.
func (h *operatorHistory) purged(ctx context.Context, st *deadletter.Store, doomed []deadletter.Record) {
	if h == nil {
		return
	}
	for _, d := range doomed {
		if _, err := st.Get(ctx, d.Seq); !errors.Is(err, deadletter.ErrNotFound) {
			continue // still there (the purge stopped early), or unknown
		}
		r := history.Record{State: history.Purged, Seq: d.OriginalSeq, DeadLetterSeq: d.Seq, Reason: d.Reason,
			ErrCode: d.ErrCode, At: h.now(), Worker: operatorWorker}
		h.w.Add(withEvent(r, d.Event, d.WaybillID))
	}
}

// withEvent fills r's event fields from the event bytes, and its waybill.
func withEvent(r history.Record, event []byte, waybill string) history.Record {
	if ev, err := pathupdate.DecodeEvent(event); err == nil {
		r = r.FromEvent(ev)
	}
	r.WaybillID = waybill
	return r
}

// close writes what is buffered.
func (h *operatorHistory) close() {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.w.Close(ctx); err != nil || h.w.Dropped() > 0 {
		h.log.Warn().Err(err).Uint64("dropped", h.w.Dropped()).Msg("history: some records of this command were not written")
	}
}
