package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

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
	var (
		halted    atomic.Bool
		firstOnce sync.Once
		first     error
		wg        sync.WaitGroup
	)
	halt := func(err error) {
		firstOnce.Do(func() { first = err })
		halted.Store(true)
	}
	sem := make(chan struct{}, h.cfg.Concurrency)
	for _, group := range byWaybill(items) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, it := range group {
				res := &results[it.index]
				if !h.cfg.Connected() {
					halt(ErrNotConnected)
					res.Status, res.Error = StatusFailed, "not published: "+ErrNotConnected.Error()
					continue
				}
				if halted.Load() {
					res.Status, res.Error = StatusFailed, "not published: an earlier publish of this request failed"
					continue
				}
				pr, err := h.pub.PublishWithID(ctx, it.ev, it.msgID)
				switch {
				case errors.Is(err, pathupdate.ErrInvalidEvent): // parseBody validated: cannot happen
					res.Status, res.Error, res.MsgID = StatusInvalid, err.Error(), ""
				case err != nil:
					halt(err)
					res.Status, res.Error = StatusFailed, err.Error()
				case pr.Duplicate:
					res.Status, res.Seq = StatusDuplicate, pr.Seq
				default:
					res.Status, res.Seq = StatusAccepted, pr.Seq
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// byWaybill groups items by waybill, keeping request order within a group
// and ordering groups by their first event.
func byWaybill(items []item) [][]item {
	pos := make(map[string]int)
	var groups [][]item
	for _, it := range items {
		g, ok := pos[it.ev.WaybillID]
		if !ok {
			g = len(groups)
			pos[it.ev.WaybillID] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], it)
	}
	return groups
}
