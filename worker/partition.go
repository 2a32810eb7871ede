package worker

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// partition is this worker's hold on one partition of the trace stream:
// its consumer (consumer.go), its lanes (lanes.go), the takeover gate
// (gate.go) and the keep-alive of what it holds. A waybill always hashes
// to the same partition, so its lane lives in exactly one partition.
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

	mu sync.Mutex // guards the fields below, lanes and gate
	// acks counts the held messages acked so far (first attempts), and
	// acking those of them still held (their ack not yet confirmed): what
	// the gate's count of ours leaves out (gate.check, partitionCounts).
	acks       uint64
	acking     int
	stopping   bool
	handedBack bool
	lanes      *lanes
	gate       *gate
	settled    *settledSeqs // the newest settled sequence per waybill (settled.go)
	// pinMoved is a pin the consumer advised that no delivery to us has
	// carried yet: lanes start no call meanwhile (pinmoved.go).
	pinMoved string

	wg   sync.WaitGroup // lanes, keep-alive, gate watch
	cc   jetstream.ConsumeContext
	cons jetstream.Consumer
	// confirmer sends the acks (acks.go); set before consuming starts,
	// closed by release once every lane has ended.
	confirmer *ackConfirmer
	// pins is the subscription to the consumer's pinned advisories
	// (pinmoved.go); set before consuming starts, ended by release.
	pins *nats.Subscription
}

func (w *Worker) newPartition(n int) *partition {
	p := &partition{
		w:        w,
		n:        n,
		consumer: pathupdate.PartitionConsumer(w.cfg.Consumer, n),
		log:      w.log.With().Int("partition", n).Logger(),
		lanes:    newLanes(),
		settled:  newSettledSeqs(settledSeqsLimit),
	}
	p.gate = newGate(partitionCounts{p})
	p.softCtx, p.cancelSoft = context.WithCancel(context.Background())
	p.callCtx, p.cancelCalls = context.WithCancel(context.Background())
	return p
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
	subject := msg.Subject()
	h := &held{msg: keep(msg), seq: meta.Sequence.Stream, subject: subject, waybill: pathupdate.WaybillFromSubject(subject),
		published: meta.Timestamp, redelivered: meta.NumDelivered > 1}
	stats := &p.w.stats
	if e := p.log.Trace(); e.Enabled() {
		// What the order-after-node-loss investigations read (the chaos
		// tests' PATHUPDATE_E2E_LOG_LEVEL=trace): nothing is built when off.
		e.Str("waybill", h.waybill).Uint64("seq", h.seq).Uint64("delivery", meta.Sequence.Consumer).
			Uint64("delivered", meta.NumDelivered).Str("pin", msg.Headers().Get(pinHeader)).Msg("received")
	}

	p.mu.Lock()
	if p.handedBack {
		// Released already; this one arrived late. Back it goes, due at
		// once, as handBack returns the others.
		p.mu.Unlock()
		stats.handedBack.Add(1)
		_ = nakNow(p.confirmer.nc, h.msg)
		return
	}
	if p.lanes.hold(h) {
		// JetStream redelivered a message we still hold (a keep-alive was
		// late). It keeps its place in the lane; the newest delivery is
		// the one answered. Its delivery sequence counts, or the next
		// delivery would look like a jump (gate.gap).
		p.gate.dseq = meta.Sequence.Consumer
		p.mu.Unlock()
		stats.redeliveriesMerged.Add(1)
		return
	}
	// Pinned anew (or for the first time after the gate opened while
	// another worker held the pin): that worker may still hold older
	// messages of our waybills. Wait until it is done.
	pin := msg.Headers().Get(pinHeader)
	if pin != "" && pin == p.pinMoved {
		p.pinMoved = "" // the pin advised is ours
	}
	// A jump in the consumer's delivery sequence closes the gate too
	// (gate.gap): the deliveries missing come back only after AckWait.
	last := p.gate.dseq
	if p.gate.pinned(pin, !p.stopping) {
		p.watchGate()
		p.log.Info().Msg("pinned anew: waiting until no other worker holds this partition's messages")
	}
	if !p.stopping && p.gate.gap(meta.Sequence.Consumer) {
		p.watchGate()
		p.log.Info().Uint64("delivery", meta.Sequence.Consumer).Uint64("previous", last).
			Msg("deliveries to this worker went missing in transit: waiting until JetStream gives them again")
	}
	stats.received.Add(1)
	if p.stopping {
		// Drained from the client's buffer during release: handBack
		// returns it with the rest, in stream order.
		p.mu.Unlock()
		return
	}
	ln := p.lanes.enqueue(h)
	if !p.gate.closed() {
		p.startLaneLocked(ln)
	}
	p.mu.Unlock()
}

// watchGate starts the goroutine that opens the gate once no other worker
// holds the partition's messages. p.mu is held.
func (p *partition) watchGate() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		waited := time.Now()
		if !p.gate.watch(p.softCtx, 5*time.Second) {
			return
		}
		p.openGate()
		if d := time.Since(waited); d > time.Second {
			p.log.Info().Dur("waited", d.Round(time.Millisecond)).Msg("partition taken over")
		}
	}()
}

// openGate lets every lane run.
func (p *partition) openGate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.gate.open() {
		return
	}
	p.log.Trace().Msg("gate opened")
	for _, ln := range p.lanes.all() {
		p.startLaneLocked(ln)
	}
}

func (p *partition) startLaneLocked(ln *lane) {
	if !p.lanes.claim(ln) {
		return
	}
	p.wg.Add(1)
	go p.runLane(ln)
}

// runLane settles the lane's messages one after another, in stream order.
// Its API calls go to the worker's callers, so its own stack stays small
// while it waits for a call slot.
func (p *partition) runLane(ln *lane) {
	defer p.wg.Done()
	// The call slot the lane kept from its last delivery for its next
	// (partition.call): whatever ends the loop gives it back.
	var slot bool
	defer func() {
		if slot {
			p.w.slots.release()
		}
	}()
	for {
		p.mu.Lock()
		h := p.lanes.head(ln)
		if h == nil || p.stopping || p.gate.closed() || p.pinMoved != "" {
			p.lanes.park(ln)
			p.mu.Unlock()
			return
		}
		stale := p.settled.stale(h.waybill, h.seq)
		unknown := !stale && !p.settled.knows(h.waybill)
		redelivered := h.redelivered
		h.backlog = len(ln.queue) - 1
		p.mu.Unlock()
		if unknown && redelivered {
			stale = p.settledElsewhere(h)
		}
		if stale {
			stale = p.staleConfirmed(h)
		}

		settle := p.settle
		if stale {
			settle = p.ackStale
		}
		if err := settle(h, &slot); err != nil {
			// Released: leave the head and all behind it held; handBack
			// returns every held message at once, in stream order.
			p.mu.Lock()
			p.lanes.park(ln)
			p.mu.Unlock()
			return
		}
		p.doneWith(ln, h)
		p.log.Trace().Str("waybill", h.waybill).Uint64("seq", h.seq).Bool("stale", stale).Msg("settled")
	}
}

// doneWith forgets h, its lane's head, once settled, and remembers that it
// was (settledSeqs, the worker's seqWindow).
func (p *partition) doneWith(ln *lane, h *held) {
	p.w.settledWin.mark(h.seq)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lanes.settled(ln)
	if h.acked {
		p.acking--
	}
	p.settled.note(h.waybill, h.seq)
}

// msgOf returns the newest delivery of h.
func (p *partition) msgOf(h *held) kept {
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
	var msgs []kept
	for {
		select {
		case <-p.softCtx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		msgs = p.lanes.msgs(msgs[:0])
		p.mu.Unlock()
		for _, m := range msgs {
			if err := inProgress(p.confirmer.nc, m); err != nil {
				p.log.Debug().Err(err).Msg("keep-alive")
			}
		}
	}
}

// counts returns how many messages and lanes the partition holds.
func (p *partition) counts() (heldN, lanes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lanes.counts()
}
