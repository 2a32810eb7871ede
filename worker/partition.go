package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// held is one message this worker has taken from JetStream and not yet
// settled (acked, dead-lettered or handed back).
type held struct {
	msg     jetstream.Msg // the newest delivery; guarded by partition.mu
	seq     uint64        // stream sequence: the message's identity
	subject string
	waybill string
}

// lane is the FIFO of one waybill's held messages, in stream order.
// Exactly one goroutine works a lane at a time; it exits when the lane is
// empty, so idle waybills cost nothing.
type lane struct {
	waybill string
	queue   []*held
	running bool
}

// partition is this worker's hold on one partition of the trace stream:
// its consumer, its lanes, and the messages it holds. A waybill always
// hashes to the same partition, so its lane lives in exactly one partition.
type partition struct {
	w        *Worker
	n        int
	consumer string
	log      zerolog.Logger

	// softCtx ends when the partition is released: lanes stop waiting and
	// leave what they hold for handBack. callCtx ends when the release
	// times out: API calls still in progress are cancelled.
	softCtx     context.Context
	cancelSoft  context.CancelFunc
	callCtx     context.Context
	cancelCalls context.CancelFunc

	mu         sync.Mutex
	gated      bool   // lanes wait until no one else holds this partition's messages
	pinID      string // the pin JetStream gave us, from Nats-Pin-Id
	acks       uint64 // acks sent, for the gate's count
	stopping   bool
	handedBack bool
	lanes      map[string]*lane
	held       map[uint64]*held

	wg   sync.WaitGroup // lanes, keep-alive, gate
	cc   jetstream.ConsumeContext
	cons jetstream.Consumer
}

func (w *Worker) newPartition(n int) *partition {
	p := &partition{
		w:        w,
		n:        n,
		consumer: consumerName(w.cfg.Consumer, n),
		log:      w.log.With().Int("partition", n).Logger(),
		gated:    true,
		lanes:    make(map[string]*lane),
		held:     make(map[uint64]*held),
	}
	p.softCtx, p.cancelSoft = context.WithCancel(context.Background())
	p.callCtx, p.cancelCalls = context.WithCancel(context.Background())
	return p
}

// consumerName is the durable consumer of partition n.
func consumerName(prefix string, n int) string { return fmt.Sprintf("%s-p%d", prefix, n) }

// start creates or updates the partition's consumer and begins pulling.
func (p *partition) start(ctx context.Context) error {
	cons, err := p.w.js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, p.w.consumerConfig(p.n))
	if err != nil {
		return fmt.Errorf("worker: consumer %s on stream %s: %w", p.consumer, pathupdate.TraceStream, err)
	}
	cc, err := cons.Consume(p.handle,
		jetstream.PullMaxMessages(min(p.w.cfg.MaxInFlight, 256)),
		jetstream.PullPriorityGroup(PriorityGroup),
		jetstream.PullExpiry(min(p.w.cfg.PinnedTTL/2, 30*time.Second)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrPinIDMismatch) {
				p.log.Debug().Err(err).Msg("consume")
			}
		}))
	if err != nil {
		return fmt.Errorf("worker: consume %s: %w", p.consumer, err)
	}
	p.mu.Lock()
	p.cc, p.cons = cc, cons
	p.wg.Add(2)
	go p.keepAlive()
	go p.watchGate()
	p.mu.Unlock()
	return nil
}

// watchGate opens the gate once every message of the partition that is
// out for delivery is held by this worker. Until then another worker (a
// previous owner still finishing, or a dead one whose messages come back
// after AckWait) holds older messages of some waybills, and delivering the
// newer ones first would break their order. The gate closes at start and
// again whenever JetStream pins the partition to us anew.
func (p *partition) watchGate() {
	cons := p.cons
	defer p.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	waited := time.Now()
	for {
		// The consumer's unacked count N is compared with a lower bound of
		// how many of those are ours: what we held before asking, less
		// every ack we sent meanwhile (lanes finish what they had started).
		// Messages that reach us meanwhile are not counted, since N may
		// predate them. N <= ours then means no one else holds anything;
		// any error in the bound only keeps the gate closed a while longer.
		p.mu.Lock()
		held0, acks0 := len(p.held), p.acks
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(p.softCtx, 5*time.Second)
		info, err := cons.Info(ctx)
		cancel()
		if err == nil {
			p.mu.Lock()
			ours := held0 - int(p.acks-acks0)
			p.mu.Unlock()
			if info.NumAckPending <= ours {
				p.openGate()
				if d := time.Since(waited); d > time.Second {
					p.log.Info().Dur("waited", d.Round(time.Millisecond)).Msg("partition taken over")
				}
				return
			}
		}
		select {
		case <-p.softCtx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *partition) openGate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.gated {
		return
	}
	p.gated = false
	for _, ln := range p.lanes {
		p.startLaneLocked(ln)
	}
}

// handle is called by the JetStream consumer, serially, for each message.
// It never blocks on delivery: it files the message into its waybill's lane.
func (p *partition) handle(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack, nothing to lose.
		p.log.Error().Err(err).Msg("message without JetStream metadata")
		return
	}
	seq := meta.Sequence.Stream
	subject := msg.Subject()
	stats := &p.w.stats

	p.mu.Lock()
	if p.handedBack {
		// Released already; this one arrived late.
		p.mu.Unlock()
		stats.handedBack.Add(1)
		_ = msg.Nak()
		return
	}
	if h, ok := p.held[seq]; ok {
		// JetStream redelivered a message we still hold (a keep-alive was
		// late). Keep its place in the lane; answer the newest delivery.
		h.msg = msg
		p.mu.Unlock()
		stats.redeliveriesMerged.Add(1)
		return
	}
	if pin := msg.Headers().Get(pinHeader); pin != "" && pin != p.pinID {
		if !p.gated && !p.stopping {
			// Pinned anew (or for the first time after the gate opened
			// while another worker held the pin): that worker may still
			// hold older messages of our waybills. Wait until it is done.
			p.gated = true
			p.wg.Add(1)
			go p.watchGate()
			p.log.Info().Msg("pinned anew: waiting until no other worker holds this partition's messages")
		}
		p.pinID = pin
	}
	h := &held{msg: msg, seq: seq, subject: subject, waybill: pathupdate.WaybillFromSubject(subject)}
	p.held[seq] = h
	stats.received.Add(1)
	if p.stopping {
		// Drained from the client's buffer during release: handBack
		// returns it with the rest, in stream order.
		p.mu.Unlock()
		return
	}
	ln, ok := p.lanes[h.waybill]
	if !ok {
		ln = &lane{waybill: h.waybill}
		p.lanes[h.waybill] = ln
	}
	// Keep the lane in stream order: while gated, a message a previous
	// owner held can come back after newer ones of its waybill.
	i := len(ln.queue)
	for i > 0 && ln.queue[i-1].seq > seq && (i > 1 || !ln.running) {
		i--
	}
	ln.queue = slices.Insert(ln.queue, i, h)
	if !p.gated {
		p.startLaneLocked(ln)
	}
	p.mu.Unlock()
}

func (p *partition) startLaneLocked(ln *lane) {
	if ln.running || len(ln.queue) == 0 {
		return
	}
	ln.running = true
	p.wg.Add(1)
	go p.runLane(ln)
}

// runLane settles the lane's messages one after another, in stream order.
func (p *partition) runLane(ln *lane) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if len(ln.queue) == 0 || p.stopping || p.gated {
			ln.running = false
			if len(ln.queue) == 0 {
				delete(p.lanes, ln.waybill)
			}
			p.mu.Unlock()
			return
		}
		h := ln.queue[0]
		p.mu.Unlock()

		if err := p.settle(h); err != nil {
			// Released: leave the head and all behind it held; handBack
			// returns every held message at once, in stream order.
			p.mu.Lock()
			ln.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		ln.queue[0] = nil
		ln.queue = ln.queue[1:]
		delete(p.held, h.seq)
		p.mu.Unlock()
	}
}

// msgOf returns the newest delivery of h.
func (p *partition) msgOf(h *held) jetstream.Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return h.msg
}

// keepAlive tells JetStream every AckWait/3 that each held message is
// still being worked on, so it is not redelivered while it waits behind its
// waybill's head, for a retry, or behind the gate.
func (p *partition) keepAlive() {
	defer p.wg.Done()
	every := max(p.w.cfg.AckWait/3, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-p.softCtx.Done():
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		p.mu.Lock()
		for _, h := range p.held {
			msgs = append(msgs, h.msg)
		}
		p.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				p.log.Debug().Err(err).Msg("keep-alive")
			}
		}
	}
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
	return n
}

// unpin lets the next owner be served at once instead of after PinnedTTL
// — but only if the pin is still ours: unpinning another worker's pin
// would move the partition away from a worker in the middle of it.
func (p *partition) unpin() {
	p.mu.Lock()
	mine, cons := p.pinID, p.cons
	p.mu.Unlock()
	if mine == "" || cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		p.log.Debug().Err(err).Msg("unpin: consumer info")
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group != PriorityGroup || g.PinnedClientID != mine {
			continue
		}
		st, err := p.w.js.Stream(ctx, pathupdate.TraceStream)
		if err == nil {
			err = st.UnpinConsumer(ctx, p.consumer, PriorityGroup)
		}
		if err != nil {
			p.log.Debug().Err(err).Msg("unpin")
		}
	}
}

// pinHeader carries the pin id on every message JetStream delivers to the
// pinned client of a consumer.
const pinHeader = "Nats-Pin-Id"

// handBack Naks every message still held, in stream order, so JetStream
// redelivers them (to the next owner at once) in the order they were
// published: its redelivery queue is first-in first-out, so Nak'ing a
// waybill's later message before its earlier one would reorder the trace.
func (p *partition) handBack() int {
	p.mu.Lock()
	p.handedBack = true
	hs := make([]*held, 0, len(p.held))
	for _, h := range p.held {
		hs = append(hs, h)
	}
	clear(p.held)
	clear(p.lanes)
	p.mu.Unlock()
	slices.SortFunc(hs, func(a, b *held) int { return cmp.Compare(a.seq, b.seq) })
	for _, h := range hs {
		if err := h.msg.Nak(); err != nil {
			p.log.Debug().Err(err).Uint64("seq", h.seq).Msg("hand back")
		}
	}
	p.w.stats.handedBack.Add(uint64(len(hs)))
	return len(hs)
}

// counts returns how many messages and lanes the partition holds.
func (p *partition) counts() (heldN, lanes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held), len(p.lanes)
}
