package gateway

import (
	"context"
	"errors"

	"github.com/pathupdate/pathupdate/internal/keyorder"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// ErrNotConnected is the cause reported when Config.Connected says the
// NATS connection is down: nothing is published then.
var ErrNotConnected = errors.New("not connected to NATS")

// publish publishes items and fills their results. Events of one waybill
// go one after the other in request order, each after the previous one's
// PubAck (per-waybill order is the contract); different waybills go
// concurrently, at most Concurrency at once. The first failure stops every
// publish not yet begun: while NATS is unreachable each would wait out its
// own AckTimeout, and a later event of a waybill must not overtake an
// earlier one that failed. It returns that first failure, or nil.
func (h *Handler) publish(ctx context.Context, items []item, results []Result) error {
	run, err := keyorder.New(keyorder.Config{
		Concurrency:   h.cfg.Concurrency,
		Queue:         max(len(items), 1), // every item is taken at once: Go never waits
		HaltOnFailure: true,
	})
	if err != nil {
		return err // cannot happen: Config.Validate checked Concurrency
	}
	for _, it := range items {
		res := &results[it.index]
		task := keyorder.Task{
			Run: func() error {
				if !h.cfg.Connected() {
					res.Status, res.Error = StatusFailed, "not published: "+ErrNotConnected.Error()
					return ErrNotConnected
				}
				pr, err := h.pub.PublishWithID(ctx, it.ev, it.msgID)
				switch {
				case errors.Is(err, pathupdate.ErrInvalidEvent): // parseBody validated: cannot happen
					res.Status, res.Error, res.MsgID = StatusInvalid, err.Error(), ""
				case err != nil:
					res.Status, res.Error = StatusFailed, err.Error()
					return err
				case pr.Duplicate:
					res.Status, res.Seq = StatusDuplicate, pr.Seq
				default:
					res.Status, res.Seq = StatusAccepted, pr.Seq
				}
				return nil
			},
			HeldBack: func(e *keyorder.HeldBackError) {
				res.Status, res.Error = StatusFailed, "not published: an earlier publish of this request failed"
				if errors.Is(e, ErrNotConnected) {
					res.Error = "not published: " + ErrNotConnected.Error()
				}
			},
		}
		if err := run.Go(context.WithoutCancel(ctx), it.ev.WaybillID, task); err != nil {
			return err // cannot happen: the queue holds every item
		}
	}
	return run.Wait()
}
