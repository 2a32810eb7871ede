package gateway

import (
	"context"
	"errors"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// ErrNotConnected is the cause reported when Config.Connected says the
// NATS connection is down: nothing is published then.
var ErrNotConnected = errors.New("not connected to NATS")

// publish publishes items and fills their results. Events of one waybill
// go one after the other in request order, each once the previous one's
// PubAck is in (per-waybill order is the contract); different waybills'
// go together, at most Concurrency in flight (pathupdate.PublishBatch,
// the pipeline `pathupdate publish` uses). The first failure stops every
// publish not yet begun: while NATS is unreachable each would wait out its
// own AckTimeout, and a later event of a waybill must not overtake an
// earlier one that failed. It returns that first failure, or nil.
func (h *Handler) publish(ctx context.Context, items []item, results []Result) error {
	batch := make([]pathupdate.BatchItem, len(items))
	for i, it := range items {
		batch[i] = pathupdate.BatchItem{Event: it.ev, MsgID: it.msgID}
	}
	outcomes := h.pub.PublishBatch(ctx, batch, pathupdate.BatchConfig{
		MaxPending:    h.cfg.Concurrency,
		HaltOnFailure: true,
		Check: func() error {
			if !h.cfg.Connected() {
				return ErrNotConnected
			}
			return nil
		},
	})
	var first error
	for i, o := range outcomes {
		res := &results[items[i].index]
		switch err := o.Err; {
		case errors.Is(err, pathupdate.ErrHeldBack):
			res.Status, res.Error = StatusFailed, "not published: an earlier publish of this request failed"
			if errors.Is(err, ErrNotConnected) {
				res.Error = "not published: " + ErrNotConnected.Error()
			}
		case errors.Is(err, ErrNotConnected):
			res.Status, res.Error = StatusFailed, "not published: "+ErrNotConnected.Error()
			first = firstOf(first, err)
		case errors.Is(err, pathupdate.ErrInvalidEvent): // parseBody validated: cannot happen
			res.Status, res.Error, res.MsgID = StatusInvalid, err.Error(), ""
		case err != nil:
			res.Status, res.Error = StatusFailed, err.Error()
			first = firstOf(first, err)
		case o.Duplicate:
			res.Status, res.Seq = StatusDuplicate, o.Seq
		default:
			res.Status, res.Seq = StatusAccepted, o.Seq
		}
	}
	return first
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
