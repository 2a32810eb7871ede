package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// ordered configures one orderedRun: how PublishLines and PublishBatch
// publish a series of events.
type ordered struct {
	// maxPending bounds the publishes in flight.
	maxPending int
	// readAhead is the most events taken and waiting for their turn
	// before run stops taking more.
	readAhead int
	// halt makes the first failure hold back every event not yet
	// published, of every waybill; otherwise only the later events of the
	// waybill that failed.
	halt bool
	// check, when set, is asked before each publish; an error fails the
	// event without publishing it (as a failed publish would).
	check func() error
	// parent is the context each publish span starts from.
	parent context.Context
	// settled is told the outcome of every event taken, once: the PubAck,
	// or why it was not stored (invalid, not acknowledged, held back).
	// It runs on run's goroutine.
	settled func(it *lineItem, ack *jetstream.PubAck, err error)
	// heldBack is the error of the events held back behind first, which
	// failed with cause.
	heldBack func(first *lineItem, cause error) error
}

// lineItem is one event on its way to the stream (a line of PublishLines,
// an item of PublishBatch), or why it cannot go (err).
type lineItem struct {
	n       int   // line number or index: what settled reports it by
	err     error // not a valid event: settled at once
	waybill string
	subject string
	msgID   string
	data    []byte // the event's canonical encoding
}

// orderedRun publishes events one waybill's after the other and different
// waybills' together, at most maxPending in flight, and settles their
// PubAcks. A waybill's event is published once the previous one is
// acknowledged: a refused publish is never overtaken by a later event of
// its waybill, and since one connection's publishes are stored in the
// order sent, the stream keeps each waybill's events in the order taken.
// Only the goroutine running run touches it, but for sent and acked.
type orderedRun struct {
	p        *Publisher
	cfg      ordered
	lanes    map[string]*lane // waybills with an event in flight or waiting
	failed   map[string]error // waybills whose event failed: what their later events are held back with
	halted   error            // with cfg.halt, what every event is held back with after the first failure
	ready    []*lane          // lanes with an event waiting and none in flight, oldest first
	spare    []*lane          // lanes to use again: one per event would be garbage to collect
	inFlight int              // published, PubAck not settled
	waiting  int              // taken, not published yet
	sent     chan *lane       // to the settling goroutine, in publish order
	acked    chan *lane       // back from it, settled
}

// lane is one waybill's events: the one in flight, if any, and those
// waiting for their turn, in order. While its event is in flight the
// settling goroutine owns the fields of that event.
type lane struct {
	waybill string
	lines   []lineItem // waiting: lines[head:]; kept at its capacity for the lane's next waybill
	head    int

	cur      lineItem // in flight
	span     trace.Span
	future   jetstream.PubAckFuture
	deadline time.Time
	ack      *jetstream.PubAck // settled: one of ack and err is set
	err      error
}

// BatchConfig configures one PublishBatch. The zero value is usable.
type BatchConfig struct {
	// MaxPending bounds the publishes in flight; default the
	// Publisher's.
	MaxPending int
	// HaltOnFailure makes the first failure hold back every event not yet
	// published, of every waybill (while NATS is unreachable each would
	// wait out its own AckTimeout); default: only the later events of the
	// waybill that failed.
	HaltOnFailure bool
	// Check, when set, is asked before each publish; an error fails that
	// event without publishing it (a connection known to be down, say).
	Check func() error
}

// BatchItem is one event of PublishBatch and the Nats-Msg-Id to send
// with it ("" means Event.ID()).
type BatchItem struct {
	Event Event
	MsgID string
}

// BatchOutcome is what became of one BatchItem: Err nil when the stream
// stored it (Duplicate when it already held it); ErrInvalidEvent for an
// event refused before publishing; ErrHeldBack when it was not published
// because an earlier one failed (errors.Is sees that failure too, with
// HaltOnFailure); any other error when it was not acknowledged.
type BatchOutcome struct {
	PublishResult
	Err error
}

// PublishBatch publishes items as PublishLines publishes lines: a
// waybill's events one after the other in the order given, each once the
// previous one is acknowledged, and different waybills' together, at most
// MaxPending in flight; after a failure the later events of its waybill
// (with HaltOnFailure, every event not yet published) are held back. It
// returns the outcome of every item, in the order given, once every
// publish is settled. ctx gives each publish's span its parent; cancelling
// it stops nothing (each publish waits at most AckTimeout).
func (p *Publisher) PublishBatch(ctx context.Context, items []BatchItem, cfg BatchConfig) []BatchOutcome {
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = p.cfg.MaxPending
	}
	out := make([]BatchOutcome, len(items))
	batch := make([]lineItem, len(items))
	for i, it := range items {
		msgID, err := publishID(it.Event, it.MsgID)
		out[i].MsgID = msgID
		batch[i] = lineItem{n: i, err: err}
		if err == nil {
			batch[i] = lineItem{n: i, waybill: it.Event.WaybillID, subject: TraceSubject(it.Event.WaybillID), msgID: msgID, data: it.Event.Encode()}
		}
	}
	in := make(chan []lineItem, 1)
	in <- batch
	close(in)
	p.newOrdered(ordered{
		maxPending: cfg.MaxPending,
		readAhead:  max(len(items), 1),
		halt:       cfg.HaltOnFailure,
		check:      cfg.Check,
		parent:     context.WithoutCancel(ctx),
		settled: func(it *lineItem, ack *jetstream.PubAck, err error) {
			o := &out[it.n]
			o.Err = err
			if ack != nil {
				o.Seq, o.Duplicate = ack.Sequence, ack.Duplicate
			}
		},
		heldBack: func(first *lineItem, cause error) error {
			return fmt.Errorf("%w: event %d (waybill %s) failed first: %w", ErrHeldBack, first.n, first.waybill, cause)
		},
	}).run(in)
	return out
}

func (p *Publisher) newOrdered(cfg ordered) *orderedRun {
	return &orderedRun{
		p:   p,
		cfg: cfg,
		// Sized for every waybill that can be at hand at once, so it
		// never grows while lanes come and go event after event.
		lanes:  make(map[string]*lane, cfg.readAhead+cfg.maxPending),
		failed: make(map[string]error),
		sent:   make(chan *lane, cfg.maxPending),
		acked:  make(chan *lane, cfg.maxPending),
	}
}

// run takes events from in until it is closed and returns once every
// event taken is settled.
func (d *orderedRun) run(in <-chan []lineItem) {
	go d.settle()
	defer close(d.sent)
	for {
		d.publishReady()
		// Asked after publishReady, not before: a failed check or send
		// there can settle every event left (with halt, all at once), and
		// nothing would then wake the select below.
		if in == nil && d.inFlight == 0 && d.waiting == 0 {
			return
		}
		take := in
		if d.waiting >= d.cfg.readAhead {
			take = nil // settle first
		}
		select {
		case batch, ok := <-take:
			if !ok {
				in = nil
				continue
			}
			for i := range batch {
				d.take(batch[i])
			}
		case l := <-d.acked:
			d.done(l)
			// Settle every PubAck already in before publishing again:
			// publishes then go out in bursts, as a raw async publisher's
			// do, not one per PubAck (each wakes the connection's
			// flusher and takes its locks against the PubAcks coming in).
			for drained := false; !drained; {
				select {
				case l := <-d.acked:
					d.done(l)
				default:
					drained = true
				}
			}
		}
	}
}

// take queues one event behind its waybill's earlier ones, or settles it
// at once: invalid, or held back behind one that failed.
func (d *orderedRun) take(it lineItem) {
	if it.err != nil {
		d.cfg.settled(&it, nil, it.err)
		return
	}
	if d.halted != nil {
		d.cfg.settled(&it, nil, d.halted)
		return
	}
	if len(d.failed) > 0 { // no lookup in the common case
		if held := d.failed[it.waybill]; held != nil {
			d.cfg.settled(&it, nil, held)
			return
		}
	}
	l := d.lanes[it.waybill]
	if l == nil {
		if n := len(d.spare); n > 0 {
			l, d.spare = d.spare[n-1], d.spare[:n-1]
		} else {
			l = &lane{}
		}
		l.waybill = it.waybill
		d.lanes[it.waybill] = l
		d.ready = append(d.ready, l)
	}
	l.lines = append(l.lines, it)
	d.waiting++
}

// publishReady publishes the first waiting event of ready lanes while
// fewer than maxPending are in flight.
func (d *orderedRun) publishReady() {
	for d.inFlight < d.cfg.maxPending && len(d.ready) > 0 {
		l := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		l.cur = l.lines[l.head]
		l.lines[l.head] = lineItem{}
		if l.head++; l.head == len(l.lines) {
			l.lines, l.head = l.lines[:0], 0
		}
		d.waiting--
		d.inFlight++
		l.span = nil // the previous event's, ended: a failed check has none
		if d.cfg.check != nil {
			if l.err = d.cfg.check(); l.err != nil {
				d.done(l)
				continue
			}
		}
		var ctx context.Context
		ctx, l.span = publishSpan(d.cfg.parent, d.p.tracer)
		l.future, l.deadline, l.err = d.p.sendAsync(ctx, l.cur.subject, l.cur.msgID, l.cur.data)
		if l.err != nil {
			d.done(l)
			continue
		}
		d.sent <- l // never blocks: it holds maxPending
	}
}

// done settles a lane's event; the next event of its waybill becomes
// ready, or, if this one failed, every waiting event of its waybill (with
// halt, of every waybill) is held back.
func (d *orderedRun) done(l *lane) {
	d.inFlight--
	if l.err != nil {
		endPublish(l.span, 0, false, l.err)
		d.cfg.settled(&l.cur, nil, l.err)
		held := d.cfg.heldBack(&l.cur, l.err)
		d.failed[l.waybill] = held
		d.holdBack(l, held)
		if d.cfg.halt && d.halted == nil {
			d.halted = held
			for _, other := range d.ready {
				d.holdBack(other, held)
			}
			d.ready = d.ready[:0]
			for _, other := range d.lanes { // those with an event in flight
				for i := other.head; i < len(other.lines); i++ {
					d.waiting--
					d.cfg.settled(&other.lines[i], nil, held)
				}
				clear(other.lines)
				other.lines, other.head = other.lines[:0], 0
			}
		}
		return
	}
	endPublish(l.span, l.ack.Sequence, l.ack.Duplicate, nil)
	d.cfg.settled(&l.cur, l.ack, nil)
	if len(l.lines) > l.head {
		d.ready = append(d.ready, l)
	} else {
		d.retire(l)
	}
}

// holdBack settles every waiting event of l with err and retires it.
func (d *orderedRun) holdBack(l *lane, err error) {
	for i := l.head; i < len(l.lines); i++ {
		d.waiting--
		d.cfg.settled(&l.lines[i], nil, err)
	}
	d.retire(l)
}

// retire forgets a lane with nothing waiting or in flight and keeps it for
// another waybill.
func (d *orderedRun) retire(l *lane) {
	delete(d.lanes, l.waybill)
	clear(l.lines)
	*l = lane{lines: l.lines[:0]}
	d.spare = append(d.spare, l)
}

// settle awaits the PubAcks in publish order (JetStream answers a
// connection's publishes in order, so it rarely waits behind a late one)
// and hands each lane back to run.
func (d *orderedRun) settle() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for l := range d.sent {
		l.ack, l.err = awaitAck(l.future, l.deadline, timer)
		d.acked <- l // never blocks: it holds maxPending
	}
}

// sendAsync publishes one event without waiting for its PubAck, which is
// due by deadline (AckTimeout from now). A handle with its own (lower)
// async limit stalls the publish: it is tried again until the deadline.
// The message carries ctx's trace context.
func (p *Publisher) sendAsync(ctx context.Context, subject, msgID string, data []byte) (jetstream.PubAckFuture, time.Time, error) {
	deadline := time.Now().Add(p.cfg.AckTimeout)
	for {
		m := &nats.Msg{Subject: subject, Data: data}
		m.Header = InjectTrace(ctx, m.Header)
		future, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(TraceStream))
		if err == nil {
			return future, deadline, nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || time.Now().After(deadline) {
			return nil, deadline, publishError(subject, err)
		}
	}
}

// awaitAck waits for f's PubAck until deadline, on timer (stopped, and
// left stopped).
func awaitAck(f jetstream.PubAckFuture, deadline time.Time, timer *time.Timer) (*jetstream.PubAck, error) {
	subject := f.Msg().Subject
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, publishError(subject, err)
	default:
	}
	timer.Reset(time.Until(deadline))
	defer timer.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, publishError(subject, err)
	case <-timer.C:
		return nil, publishError(subject, fmt.Errorf("no PubAck within the ack timeout: %w", jetstream.ErrAsyncPublishTimeout))
	}
}
