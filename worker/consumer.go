package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// pinHeader carries the pin id on every message JetStream delivers to the
// pinned client of a consumer.
const pinHeader = "Nats-Pin-Id"

// start creates or updates the partition's consumer and begins pulling,
// with the gate closed until watchGate opens it.
func (p *partition) start(ctx context.Context) error {
	cons, err := p.w.js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, p.w.consumerConfig(p.n))
	if err != nil {
		return fmt.Errorf("worker: consumer %s on stream %s: %w", p.consumer, pathupdate.TraceStream, err)
	}
	p.w.applyPause(ctx, p.consumer)
	p.dropOrphanPin(ctx, cons)
	if p.confirmer, err = newAckConfirmer(p.w.js.Conn()); err != nil {
		return fmt.Errorf("worker: subscribe to the ack confirmations of %s: %w", p.consumer, err)
	}
	if p.pins, err = p.watchPins(p.w.js.Conn()); err != nil {
		p.confirmer.close()
		return fmt.Errorf("worker: subscribe to the pin advisories of %s: %w", p.consumer, err)
	}
	cc, err := cons.Consume(p.handle,
		jetstream.PullMaxMessages(min(p.w.cfg.MaxInFlight, 256)),
		jetstream.PullPriorityGroup(PriorityGroup),
		jetstream.PullExpiry(min(p.w.cfg.PinnedTTL/2, 30*time.Second)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				p.pinRefused()
				return
			}
			p.log.Debug().Err(err).Msg("consume")
		}))
	if err != nil {
		p.confirmer.close()
		_ = p.pins.Unsubscribe()
		return fmt.Errorf("worker: consume %s: %w", p.consumer, err)
	}
	p.mu.Lock()
	p.cc, p.cons = cc, cons
	p.wg.Add(1)
	go p.keepAlive()
	p.watchGate()
	p.mu.Unlock()
	return nil
}

// partitionCounts is the gate's view of a partition: the consumer's count
// from consumer info, ours from the partition.
type partitionCounts struct{ p *partition }

func (c partitionCounts) NumAckPending(ctx context.Context) (int, error) {
	info, err := c.p.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumAckPending, nil
}

// Ours leaves out the held messages whose ack was sent: the consumer may
// have taken the ack and dropped them from NumAckPending while their lanes
// wait for its confirmation, and counting them as ours would let them
// stand in for as many messages out elsewhere, or lost in transit to us
// (a node lost while acks were in flight opened the gate over three lost
// deliveries, 2026-12-07). An ack sent but not taken only keeps the gate
// closed until it is.
func (c partitionCounts) Ours() (int, uint64) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	heldN, _ := c.p.lanes.counts()
	return heldN - c.p.acking, c.p.acks
}

// release stops pulling, lets API calls in progress finish (at most
// timeout, then cancels them), hands every unsettled message back in
// stream order and unpins the consumer so the next owner is served at
// once. It returns how many messages it handed back.
func (p *partition) release(timeout time.Duration) int {
	p.mu.Lock()
	p.stopping = true
	cc := p.cc
	p.mu.Unlock()

	hard := time.NewTimer(timeout)
	defer hard.Stop()
	if cc != nil {
		// Drain hands what the client buffered to handle, which holds it.
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-hard.C:
			cc.Stop()
		}
	}
	p.cancelSoft()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-hard.C:
		p.log.Warn().Dur("timeout", timeout).Msg("release timeout: cancelling API calls in progress")
		p.cancelCalls()
		<-done
	}
	p.cancelCalls()
	n := p.handBack()
	p.unpin()
	if p.confirmer != nil { // every lane has ended: no ack is in progress
		p.confirmer.close()
	}
	if p.pins != nil {
		_ = p.pins.Unsubscribe() // fails only on a closed connection, which ended it
	}
	return n
}

// unpin lets the next owner be served at once instead of after PinnedTTL
// — but only if the pin is still ours: unpinning another worker's pin
// would move the partition away from a worker in the middle of it.
//
// It asks for the consumer's info even when we never learnt a pin (no
// message reached us): the server drops pull requests nobody listens to
// when it builds that answer, and our last ones, left waiting after the
// drain, would otherwise be picked and pinned by the next message that
// arrives — a pin no one holds, which stalls the partition for PinnedTTL.
func (p *partition) unpin() {
	p.mu.Lock()
	mine, cons := p.gate.pinID(), p.cons
	p.mu.Unlock()
	if cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		p.log.Debug().Err(err).Msg("unpin: consumer info")
		return
	}
	if mine == "" {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group != PriorityGroup || g.PinnedClientID != mine {
			continue
		}
		if err := p.unpinConsumer(ctx); err != nil {
			p.log.Debug().Err(err).Msg("unpin")
		}
	}
}

// dropOrphanPin unpins the partition when its pin belongs to no one: a
// worker that died while it held nothing (killed, or its connection lost)
// leaves pull requests in the server's queue, and the first message to
// arrive pins one of them although nobody listens to it any more — the
// server assigns the pin before it checks for interest. Every worker after
// it would wait out PinnedTTL for nothing.
//
// A pin belongs to no one when, after the consumer info has dropped the
// pull requests nobody listens to, none is left waiting and no message is
// pending an ack: a live pinned worker always keeps a pull request waiting,
// and nothing held means no waybill's order can depend on the holder.
func (p *partition) dropOrphanPin(ctx context.Context, cons jetstream.Consumer) {
	info, err := cons.Info(ctx)
	if err != nil {
		p.log.Debug().Err(err).Msg("orphan pin: consumer info")
		return
	}
	if info.NumWaiting > 0 || info.NumAckPending > 0 || !pinnedIn(info.PriorityGroups) {
		return
	}
	if err := p.unpinConsumer(ctx); err != nil {
		p.log.Debug().Err(err).Msg("orphan pin: unpin")
		return
	}
	p.log.Info().Msg("unpinned a pin no live worker held")
}

// unpinConsumer unpins the partition's consumer, whoever holds the pin.
func (p *partition) unpinConsumer(ctx context.Context) error {
	st, err := p.w.js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return err
	}
	return st.UnpinConsumer(ctx, p.consumer, PriorityGroup)
}

// pinnedIn reports whether the partitions' priority group has a pin.
func pinnedIn(groups []jetstream.PriorityGroupState) bool {
	for _, g := range groups {
		if g.Group == PriorityGroup && g.PinnedClientID != "" {
			return true
		}
	}
	return false
}

// handBackNak returns a message for redelivery with a delay that has
// already passed. A plain Nak only queues the message in the server's
// memory, which a restart of the server (the worker's embedded one stops
// with it) forgets: the message would then wait a whole AckWait from its
// last keep-alive before anyone gets it. A Nak with a delay is stored with
// the consumer's state instead, as due now, and the server redelivers due
// messages in stream order at once, and after a restart within a second.
var handBackNak = []byte(`-NAK {"delay":1}`)

// handBack returns every message still held to JetStream, in stream
// order, and waits until the server has taken each: its redelivery is
// first-in first-out, so handing a waybill's later message back before its
// earlier one would reorder the trace, and a stop that returned before the
// server had them would leave them to AckWait.
func (p *partition) handBack() int {
	p.mu.Lock()
	p.handedBack = true
	hs := p.lanes.takeAll()
	p.acking = 0
	p.mu.Unlock()
	if len(hs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := nakConfirmed(ctx, p.w.js.Conn(), hs); err != nil {
			p.log.Warn().Err(err).Int("messages", len(hs)).Msg("hand back not confirmed: what the server missed comes back after AckWait")
		}
		cancel()
	}
	p.w.stats.handedBack.Add(uint64(len(hs)))
	return len(hs)
}

// nakConfirmed sends handBackNak for each of hs, in order, asking the
// server to confirm each, and waits for every confirmation.
func nakConfirmed(ctx context.Context, nc *nats.Conn, hs []*held) error {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	sent := 0
	for _, h := range hs {
		if h.msg.Reply() == "" {
			continue
		}
		if err := nc.PublishMsg(&nats.Msg{Subject: h.msg.Reply(), Reply: inbox, Data: handBackNak}); err != nil {
			return fmt.Errorf("nak seq %d: %w", h.seq, err)
		}
		sent++
	}
	for got := 0; got < sent; got++ {
		if _, err := sub.NextMsgWithContext(ctx); err != nil {
			return fmt.Errorf("%d of %d naks confirmed: %w", got, sent, err)
		}
	}
	return nil
}
