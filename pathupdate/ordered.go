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

// ordered configures one orderedRun: how PublishLines, PublishBatch and
// PublishOrdered publish a series of events.
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
	// span, when set, starts each publish's span (and gives the context
	// whose trace the message carries) instead of a publish span from
	// parent: a replay's span lives in the trace its record kept.
	span func(it *lineItem) (context.Context, trace.Span)
	// publishErr, when set, is what a refused or unanswered publish is
	// settled with instead of publishError's wording: PublishOrdered's
	// caller names the message its own way.
	publishErr func(subject string, err error) error
	// settled is told the outcome of every event taken, once: the PubAck,
	// or why it was not stored (invalid, not acknowledged, held back).
	// It runs on run's goroutine.
	settled func(it *lineItem, ack *jetstream.PubAck, err error)
	// heldBack is the error of the events held back behind first, which
	// failed with cause.
	heldBack func(first *lineItem, cause error) error
	// recycle, when set, is handed every batch run has taken, emptied,
	// for its feeder to fill again (a batch of lines is garbage to
	// collect otherwise).
	recycle func([]lineItem)
}

// lineItem is one event on its way to the stream (a line of PublishLines,
// an item of PublishBatch, a message of PublishOrdered), or why it cannot
// go (err).
type lineItem struct {
	n       int   // line number or index: what settled reports it by
	err     error // not a valid event: settled at once
	waybill string
	subject string
	msgID   string
	data    []byte      // published as it is: the event's canonical encoding, or PublishOrdered's bytes
	header  nats.Header // sent with it (the publish adds its own headers); nil for most
	ref     any         // PublishOrdered's caller's, handed back with the outcome
}

// orderedRun publishes events one waybill's after the other and different
// waybills' together, at most maxPending in flight, and settles their
// PubAcks. A waybill's event is published once the previous one is
// acknowledged: a refused publish is never overtaken by a later event of
// its waybill, and since one connection's publishes are stored in the
// order sent, the stream keeps each waybill's events in the order taken.
// Only the goroutine running run touches it: it publishes, and it settles
// the PubAcks itself (a settling goroutine of its own cost a hand-over and
// a wake-up per event).
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
	flight   []*lane          // lanes with an event in flight, in publish order: flight[head:]
	head     int              // of flight
	timer    *time.Timer      // armed for the deadline of timed, the oldest in flight
	timed    *lane
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
	ctx      context.Context // cur's publish context (its span's), for a send again
	sends    int             // of cur so far
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

// OrderedMsg is one message of PublishOrdered: bytes already encoded (a
// dead letter's event, say) for TraceSubject(Waybill).
type OrderedMsg struct {
	// Waybill is the message's lane and subject; not a valid waybill id:
	// the message is settled at once with an error, unpublished.
	Waybill string
	// MsgID is the Nats-Msg-Id, a single line of at most MaxMsgIDLen bytes
	// (otherwise: settled at once, unpublished).
	MsgID string
	// Data is published as it is: not decoded or validated, so the caller
	// vouches for it.
	Data []byte
	// Header, when not nil, is sent with the message; the publish writes
	// its own headers (Nats-Msg-Id, expected stream, trace context) into
	// it, so it must be the message's own.
	Header nats.Header
	// Ref is the caller's: handed back with the message to Span and
	// Settled, so the caller need not look the message up.
	Ref any
}

// OrderedConfig configures one PublishOrdered. Settled is required.
type OrderedConfig struct {
	// MaxPending bounds the publishes in flight; default the Publisher's.
	MaxPending int
	// ReadAhead bounds the messages taken and waiting for their turn;
	// publish blocks while it is reached. Default ReadAheadPerPending ×
	// MaxPending.
	ReadAhead int
	// HaltOnFailure makes the first failure hold back every message not
	// yet published, of every waybill; default: only the later messages of
	// the waybill that failed.
	HaltOnFailure bool
	// Check, when set, is asked before each publish; an error fails that
	// message without publishing it (and holds back what a failure holds
	// back): the caller's way to stop.
	Check func() error
	// Span, when set, starts the span of a message's publish in place of
	// the Publisher's publish span; the message carries the trace context
	// of the context it returns (a nil span: none, the context's trace
	// context still goes). The span ends as the Publisher's do: with the
	// PubAck's stream sequence, or an error status.
	Span func(m OrderedMsg) (context.Context, trace.Span)
	// Settled is told the outcome of every message handed over, once: the
	// PubAck, or why it was not stored. err is what nats.go answered (the
	// caller names the message; it is not worded as PublishLines words
	// it), Check's error, an error matching ErrHeldBack for a message held
	// back behind a failure, or why the message was refused at once. Calls
	// come one at a time from the goroutine that called PublishOrdered,
	// which publishes and settles every message: Settled must not block.
	Settled func(m OrderedMsg, ack *jetstream.PubAck, err error)
}

// PublishOrdered publishes the messages feed hands to publish as
// PublishBatch publishes events (the pipeline of PublishLines and the
// gateway): a waybill's messages one after the other in the order handed
// over, each once the previous one is acknowledged, and different
// waybills' together, at most MaxPending in flight; after a failure the
// later messages of its waybill (with HaltOnFailure, every message not yet
// published) are held back. feed runs on a goroutine of its own while
// messages are published; publish blocks while ReadAhead messages wait,
// and must not be called once feed has returned. PublishOrdered returns
// feed's error once feed has returned and every message handed over is
// settled. ctx gives each publish's span its parent (unless Span);
// cancelling it stops nothing: Check and feed decide when to stop.
func (p *Publisher) PublishOrdered(ctx context.Context, cfg OrderedConfig, feed func(publish func(OrderedMsg)) error) error {
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = p.cfg.MaxPending
	}
	if cfg.ReadAhead <= 0 {
		cfg.ReadAhead = ReadAheadPerPending * cfg.MaxPending
	}
	msg := func(it *lineItem) OrderedMsg {
		return OrderedMsg{Waybill: it.waybill, MsgID: it.msgID, Data: it.data, Header: it.header, Ref: it.ref}
	}
	oc := ordered{
		maxPending: cfg.MaxPending,
		readAhead:  cfg.ReadAhead,
		halt:       cfg.HaltOnFailure,
		check:      cfg.Check,
		parent:     context.WithoutCancel(ctx),
		publishErr: func(_ string, err error) error { return err },
		settled:    func(it *lineItem, ack *jetstream.PubAck, err error) { cfg.Settled(msg(it), ack, err) },
		heldBack: func(first *lineItem, cause error) error {
			return fmt.Errorf("%w: message %s (waybill %s) failed first: %w", ErrHeldBack, first.msgID, first.waybill, cause)
		},
	}
	if cfg.Span != nil {
		oc.span = func(it *lineItem) (context.Context, trace.Span) { return cfg.Span(msg(it)) }
	}
	d := p.newOrdered(oc)
	in := make(chan []lineItem, 4)
	feedErr := make(chan error, 1)
	go func() {
		defer close(in)
		feedErr <- feed(func(m OrderedMsg) {
			it := lineItem{waybill: m.Waybill, subject: TraceSubject(m.Waybill), msgID: m.MsgID, data: m.Data, header: m.Header, ref: m.Ref}
			if err := checkWaybillID(m.Waybill); err != nil {
				it.err = fmt.Errorf("not published: %w", err)
			} else if err := checkMsgID(m.MsgID); err != nil {
				it.err = fmt.Errorf("not published: %w", err)
			}
			in <- []lineItem{it}
		})
	}()
	d.run(in)
	return <-feedErr
}

func (p *Publisher) newOrdered(cfg ordered) *orderedRun {
	return &orderedRun{
		p:   p,
		cfg: cfg,
		// Sized for every waybill that can be at hand at once, so it
		// never grows while lanes come and go event after event.
		lanes:  make(map[string]*lane, cfg.readAhead+cfg.maxPending),
		failed: make(map[string]error),
		flight: make([]*lane, 0, cfg.maxPending),
	}
}

// run takes events from in until it is closed and returns once every
// event taken is settled.
func (d *orderedRun) run(in <-chan []lineItem) {
	d.timer = time.NewTimer(time.Hour)
	d.timer.Stop()
	defer d.timer.Stop()
	for {
		d.publishReady()
		// Asked after publishReady, not before: a failed check or send
		// there can settle every event left (with halt, all at once), and
		// nothing would then wake the select below.
		if in == nil && d.inFlight == 0 && d.waiting == 0 {
			return
		}
		// Take more only while it can help: below readAhead, and while
		// fewer waybills are ready than a whole window. With interleaved
		// input nearly every waiting event is ready, and reading on to
		// readAhead would only queue tens of thousands of events whose
		// bookkeeping has left the CPU's caches by their turn; input that
		// keeps a waybill's lines together has few ready and reads on.
		take := in
		if d.waiting >= d.cfg.readAhead || len(d.ready) >= d.cfg.maxPending {
			take = nil // settle first
		}
		// JetStream answers a connection's publishes in order, so waiting
		// for the oldest in flight rarely waits behind a late one.
		var okc <-chan *jetstream.PubAck
		var errc <-chan error
		if l := d.oldest(); l != nil {
			okc, errc = l.future.Ok(), l.future.Err()
			if d.timed != l {
				d.timed = l
				d.timer.Reset(time.Until(l.deadline))
			}
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
			if d.cfg.recycle != nil {
				clear(batch)
				d.cfg.recycle(batch[:0])
			}
		case ack := <-okc:
			d.settleOldest(ack, nil)
			// Settle every PubAck already in before publishing again:
			// publishes then go out in bursts, as a raw async publisher's
			// do, not one per PubAck (each wakes the connection's
			// flusher and takes its locks against the PubAcks coming in).
			d.settleArrived()
		case err := <-errc:
			d.settleOldest(nil, err)
			d.settleArrived()
		case <-d.timer.C:
			// The oldest is due: settleArrived takes its PubAck if it came
			// as the timer fired, and times it out otherwise.
			d.timed = nil
			d.settleArrived()
		}
	}
}

// errNoPubAck is the error of a publish whose PubAck did not come by its
// deadline (AckTimeout).
var errNoPubAck = fmt.Errorf("no PubAck within the ack timeout: %w", jetstream.ErrAsyncPublishTimeout)

// oldest is the lane whose event was published first of those in flight,
// or nil.
func (d *orderedRun) oldest() *lane {
	if d.head == len(d.flight) {
		return nil
	}
	return d.flight[d.head]
}

// settleOldest settles the oldest event in flight with its PubAck or
// err (nats.go's, not yet worded).
func (d *orderedRun) settleOldest(ack *jetstream.PubAck, err error) {
	l := d.flight[d.head]
	d.flight[d.head] = nil
	if d.head++; d.head == len(d.flight) {
		d.flight, d.head = d.flight[:0], 0
	}
	if d.timed == l {
		d.timer.Stop()
		d.timed = nil
	}
	if err == errNoPubAck && l.sends < d.p.cfg.AckAttempts {
		// A late PubAck is most often a slow server, not a lost
		// message: send it again with the same Nats-Msg-Id (the stream
		// keeps one copy) rather than fail it, and its waybill with it.
		d.send(l)
		return
	}
	l.ack, l.err = ack, err
	if err != nil {
		l.err = d.failure(l.cur.subject, err)
	}
	d.done(l)
}

// settleArrived settles, in publish order, the events in flight whose
// PubAck (or error) is in already.
func (d *orderedRun) settleArrived() {
	for {
		l := d.oldest()
		if l == nil {
			return
		}
		// Ok first, and Err only when it is not in: each call takes the
		// handle's lock and makes the future's channel.
		select {
		case ack := <-l.future.Ok():
			d.settleOldest(ack, nil)
			continue
		default:
		}
		select {
		case err := <-l.future.Err():
			d.settleOldest(nil, err)
		default:
			if !time.Now().Before(l.deadline) {
				d.settleOldest(nil, errNoPubAck)
				continue
			}
			return
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
		if d.cfg.span != nil {
			l.ctx, l.span = d.cfg.span(&l.cur)
		} else {
			l.ctx, l.span = publishSpan(d.cfg.parent, d.p.tracer)
		}
		l.sends = 0
		d.send(l)
	}
}

// send publishes l's event (again, after a PubAck that did not come) and
// puts it in flight, or settles it as failed if nats.go refused it.
func (d *orderedRun) send(l *lane) {
	l.sends++
	l.future, l.deadline, l.err = d.p.sendAsync(l.ctx, &l.cur)
	if l.err != nil {
		l.err = d.failure(l.cur.subject, l.err)
		d.done(l)
		return
	}
	if d.head > 0 && len(d.flight) == cap(d.flight) {
		// Move what is in flight to the front rather than grow.
		n := copy(d.flight, d.flight[d.head:])
		clear(d.flight[n:])
		d.flight, d.head = d.flight[:n], 0
	}
	d.flight = append(d.flight, l)
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
	if l.sends > 1 && l.ack.Duplicate {
		// Most likely the copy of this run's own first send, stored
		// while its PubAck was late: count it stored, not found there.
		l.ack.Duplicate = false
	}
	endPublish(l.span, l.ack.Sequence, l.ack.Duplicate, nil)
	d.cfg.settled(&l.cur, l.ack, nil)
	l.ctx = nil
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

// failure is what a publish to subject that failed with err (as nats.go
// said, or no PubAck in time) is settled with.
func (d *orderedRun) failure(subject string, err error) error {
	if d.cfg.publishErr != nil {
		return d.cfg.publishErr(subject, err)
	}
	return publishError(subject, err)
}

// sendAsync publishes one event without waiting for its PubAck, which is
// due by deadline (AckTimeout from now). A handle with its own (lower)
// async limit stalls the publish: it is tried again until the deadline.
// The message carries it.header and ctx's trace context. The error is
// nats.go's, not yet worded (see failure).
func (p *Publisher) sendAsync(ctx context.Context, it *lineItem) (jetstream.PubAckFuture, time.Time, error) {
	deadline := time.Now().Add(p.cfg.AckTimeout)
	// The two headers WithMsgID and WithExpectStream would write, written
	// here: the options cost two closures and a pass over every publish
	// option for each event.
	h := it.header
	if h == nil {
		h = make(nats.Header, 2)
	}
	v := &[2]string{it.msgID, TraceStream} // one allocation for both values
	h[jetstream.MsgIDHeader] = v[0:1:1]
	h[jetstream.ExpectedStreamHeader] = v[1:2:2]
	h = InjectTrace(ctx, h)
	for {
		m := &nats.Msg{Subject: it.subject, Data: it.data, Header: h}
		future, err := p.js.PublishMsgAsync(m)
		if err == nil {
			return future, deadline, nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || time.Now().After(deadline) {
			return nil, deadline, err
		}
	}
}
