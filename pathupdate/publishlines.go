package pathupdate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// ReadAheadPerPending is how many lines PublishLines holds, read and
// waiting for their turn, per publish it may have in flight (MaxPending):
// a waybill's lines go one after the other, so input that keeps a
// waybill's lines together (a per-parcel export) needs lines of many
// waybills at hand to keep MaxPending publishes in flight. 16 × the
// default 1024 is about 16,000 events, a few MiB.
const ReadAheadPerPending = 16

// lineBatch is how many decoded lines the reading goroutine hands over at
// once: one channel operation per batch, not per line.
const lineBatch = 64

// Summary counts what PublishLines did with its input.
type Summary struct {
	Accepted   int         // stored by the stream
	Duplicates int         // already in the stream (same Nats-Msg-Id within the duplicate window)
	Invalid    int         // lines that are not a valid event: not published
	Failed     int         // valid events not acknowledged (they may or may not be stored; publishing them again is safe), and those held back behind one of their waybill's (ErrHeldBack)
	Errors     []LineError // the first MaxLineErrors invalid or failed lines
}

// LineError is why one input line was not stored. Err matches
// ErrInvalidEvent for an invalid line.
type LineError struct {
	Line int // 1-based, blank lines counted
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e LineError) Unwrap() error { return e.Err }

// ErrHeldBack is matched (errors.Is) by the LineError of a line that
// PublishLines did not publish because an earlier line of the same waybill
// was not acknowledged: publishing it would put the waybill's events out
// of order once the earlier one is published again.
var ErrHeldBack = errors.New("not published: held back behind an earlier event of its waybill that was not acknowledged")

// PublishLines reads JSON lines from r (one event a line, blank lines
// skipped, lines up to MaxLineBytes) and publishes every valid one as
// Publish would, asynchronously with at most MaxPending unacknowledged.
// Invalid lines are counted with their line numbers and not published.
//
// Order per waybill is kept across failures: a line is published only
// once the previous line of its waybill is acknowledged, and once a line
// of a waybill is not acknowledged the later lines of that waybill are
// not published but counted as Failed (ErrHeldBack). Publishing the same
// input again then puts every waybill's events into the stream in input
// order, the ones already stored being duplicates within the duplicate
// window. Lines of different waybills do not wait for each other: while
// a waybill's line waits for the previous one's PubAck, reading goes on
// (up to ReadAheadPerPending × MaxPending lines waiting), so the stream
// may store lines of different waybills in another order than the input's.
//
// Every line read before ctx was cancelled or reading failed is published
// in its turn and its PubAck awaited (each for at most AckTimeout), so the
// Summary is exact. The error is non-nil only for a reading failure or
// ctx; publish failures are counted in Summary.Failed. progress, if not
// nil, is called every ProgressEvery settled lines and once at the end,
// never concurrently.
func (p *Publisher) PublishLines(ctx context.Context, r io.Reader, progress func(Summary)) (Summary, error) {
	if progress == nil {
		progress = func(Summary) {}
	}
	// Reading and decoding run in their own goroutine; this one publishes
	// and settles, and alone owns the bookkeeping (no locks).
	lines := make(chan []lineItem, 4)
	readErr := make(chan error, 1)
	go func() { readErr <- p.readLines(ctx, r, lines) }()
	d := &lineDispatch{
		p:         p,
		t:         tally{progress: progress},
		failed:    make(map[string]int),
		readAhead: ReadAheadPerPending * p.cfg.MaxPending,
		sent:      make(chan *lane, p.cfg.MaxPending),
		acked:     make(chan *lane, p.cfg.MaxPending),
	}
	// Sized for every waybill that can be at hand at once, so it never
	// grows while lanes come and go line after line.
	d.lanes = make(map[string]*lane, d.readAhead+p.cfg.MaxPending)
	d.run(lines)
	err := <-readErr
	progress(cloneSummary(d.t.sum))
	return d.t.sum, err
}

// lineItem is one input line, decoded: an event ready to publish or why
// the line is invalid.
type lineItem struct {
	n       int
	err     error // the line is not a valid event
	waybill string
	subject string
	msgID   string
	data    []byte // the event's canonical encoding
}

// readLines reads r and hands every non-blank line, decoded, to out in
// batches, in input order; it closes out when it stops. It stops at the
// end of r, at a reading failure or once ctx is done: a line read after
// that is not handed over.
func (p *Publisher) readLines(ctx context.Context, r io.Reader, out chan<- []lineItem) error {
	defer close(out)
	br := bufio.NewReaderSize(r, 64<<10)
	batch := make([]lineItem, 0, lineBatch)
	flush := func() {
		if len(batch) > 0 {
			out <- batch
			batch = make([]lineItem, 0, lineBatch)
		}
	}
	defer flush() // runs before close(out)
	var buf []byte
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish lines: stopped before line %d: %w", n, err)
		}
		// Hand over what is decoded before a read that may block (a
		// producer piping lines in as they happen must not wait for a
		// batch to fill).
		if br.Buffered() == 0 {
			flush()
		}
		line, tooLong, err := readLine(br, buf[:0])
		buf = line
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("publish lines: read line %d: %w", n, err)
		}
		if tooLong {
			batch = append(batch, lineItem{n: n, err: fmt.Errorf("%w: line longer than %d bytes", ErrInvalidEvent, MaxLineBytes)})
		} else if len(bytes.TrimSpace(line)) == 0 {
			continue
		} else {
			ev, err := DecodeEvent(line)
			if err == nil {
				err = validateForPublish(ev) // DecodeEvent validates; this only guarantees the sentinel
			}
			if err != nil {
				batch = append(batch, lineItem{n: n, err: err})
			} else {
				// A line read after cancellation is not published.
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("publish lines: stopped at line %d: %w", n, err)
				}
				batch = append(batch, lineItem{n: n, waybill: ev.WaybillID, subject: TraceSubject(ev.WaybillID), msgID: ev.ID(), data: ev.Encode()})
			}
		}
		if len(batch) == cap(batch) {
			flush()
		}
	}
}

// lineDispatch publishes decoded lines, one waybill's after the other,
// and settles their PubAcks. Only the goroutine running run touches it,
// but for sent and acked.
type lineDispatch struct {
	p         *Publisher
	t         tally
	lanes     map[string]*lane // waybills with a line in flight or waiting
	failed    map[string]int   // waybills with a line not acknowledged: its line number
	ready     []*lane          // lanes with a line waiting and none in flight, oldest first
	spare     []*lane          // lanes to use again: one per line would be garbage to collect
	inFlight  int              // published, PubAck not settled
	waiting   int              // read, not published yet
	readAhead int              // most lines waiting before reading pauses
	sent      chan *lane       // to the settling goroutine, in publish order
	acked     chan *lane       // back from it, settled
}

// lane is one waybill's lines: the one in flight, if any, and those
// waiting for their turn, in input order. While its line is in flight the
// settling goroutine owns the fields of that line.
type lane struct {
	waybill string
	lines   []lineItem

	cur      lineItem // in flight
	span     trace.Span
	future   jetstream.PubAckFuture
	deadline time.Time
	ack      *jetstream.PubAck // settled: one of ack and err is set
	err      error
}

// run takes lines from in until it is closed and returns once every line
// is settled.
func (d *lineDispatch) run(in <-chan []lineItem) {
	go d.settle()
	defer close(d.sent)
	for in != nil || d.inFlight > 0 || d.waiting > 0 {
		d.publishReady()
		take := in
		if d.waiting >= d.readAhead {
			take = nil // settle first
		}
		select {
		case batch, ok := <-take:
			if !ok {
				in = nil
				continue
			}
			for _, it := range batch {
				d.take(it)
			}
		case l := <-d.acked:
			d.done(l)
		}
	}
}

// take queues one line behind its waybill's earlier ones, or settles it
// at once: invalid, or held back behind a line that failed.
func (d *lineDispatch) take(it lineItem) {
	if it.err != nil {
		d.t.line(it.n, it.err, false)
		return
	}
	if first, failed := d.failed[it.waybill]; failed {
		d.t.line(it.n, heldBack(first, it.waybill), false)
		return
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

// publishReady publishes the first waiting line of ready lanes while
// fewer than MaxPending are in flight.
func (d *lineDispatch) publishReady() {
	for d.inFlight < d.p.cfg.MaxPending && len(d.ready) > 0 {
		l := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		l.cur = l.lines[0]
		l.lines[0] = lineItem{}
		l.lines = l.lines[1:]
		d.waiting--
		d.inFlight++
		var ctx context.Context
		ctx, l.span = publishSpan(context.Background(), d.p.tracer) // each line starts its own trace
		l.future, l.deadline, l.err = d.p.sendAsync(ctx, l.cur.subject, l.cur.msgID, l.cur.data)
		if l.err != nil {
			d.done(l)
			continue
		}
		d.sent <- l // never blocks: it holds MaxPending
	}
}

// done counts a settled line; the next line of its waybill becomes ready,
// or, if this one failed, every waiting line of its waybill is held back.
func (d *lineDispatch) done(l *lane) {
	d.inFlight--
	n := l.cur.n
	if l.err != nil {
		endPublish(l.span, 0, false, l.err)
		d.p.log.Debug().Int("line", n).Err(MaskPhonesError(l.err)).Msg("publish not acknowledged")
		d.t.line(n, l.err, false)
		d.failed[l.waybill] = n
		for _, it := range l.lines {
			d.waiting--
			d.t.line(it.n, heldBack(n, l.waybill), false)
		}
		d.retire(l)
		return
	}
	endPublish(l.span, l.ack.Sequence, l.ack.Duplicate, nil)
	d.t.line(n, nil, l.ack.Duplicate)
	if len(l.lines) > 0 {
		d.ready = append(d.ready, l)
	} else {
		d.retire(l)
	}
}

// retire forgets a lane with nothing waiting or in flight and keeps it for
// another waybill.
func (d *lineDispatch) retire(l *lane) {
	delete(d.lanes, l.waybill)
	*l = lane{lines: l.lines[:0]}
	d.spare = append(d.spare, l)
}

// settle awaits the PubAcks in publish order (JetStream answers a
// connection's publishes in order, so it rarely waits behind a late one)
// and hands each line back to run.
func (d *lineDispatch) settle() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for l := range d.sent {
		l.ack, l.err = awaitAck(l.future, l.deadline, timer)
		d.acked <- l // never blocks: it holds MaxPending
	}
}

func heldBack(first int, waybill string) error {
	return fmt.Errorf("%w (line %d of waybill %s was not): publish the input again", ErrHeldBack, first, waybill)
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
		return nil, fmt.Errorf("publish to %s: no PubAck within the ack timeout: %w", subject, jetstream.ErrAsyncPublishTimeout)
	}
}

// tally counts what happened to each line; lines settle in any order.
// Only the dispatching goroutine uses it.
type tally struct {
	sum      Summary
	settled  int
	progress func(Summary)
}

// line counts one settled line: err nil for a stored one.
func (t *tally) line(n int, err error, duplicate bool) {
	switch {
	case errors.Is(err, ErrInvalidEvent):
		t.sum.Invalid++
	case err != nil:
		t.sum.Failed++
	case duplicate:
		t.sum.Duplicates++
	default:
		t.sum.Accepted++
	}
	if err != nil {
		// Keep the first MaxLineErrors lines, in line order.
		le := LineError{Line: n, Err: err}
		i, _ := slices.BinarySearchFunc(t.sum.Errors, n, func(e LineError, n int) int { return e.Line - n })
		if i < MaxLineErrors {
			t.sum.Errors = slices.Insert(t.sum.Errors, i, le)
			if len(t.sum.Errors) > MaxLineErrors {
				t.sum.Errors = t.sum.Errors[:MaxLineErrors]
			}
		}
	}
	if t.settled++; t.settled%ProgressEvery == 0 {
		t.progress(cloneSummary(t.sum))
	}
}

// readLine reads one line into buf without its line ending. A line longer
// than MaxLineBytes is consumed whole and reported tooLong. At the end of
// the input it returns io.EOF with no line.
func readLine(br *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	for {
		frag, more, err := br.ReadLine()
		if err != nil {
			return buf, tooLong, err
		}
		if !tooLong {
			if len(buf)+len(frag) > MaxLineBytes {
				tooLong, buf = true, buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if !more {
			return buf, tooLong, nil
		}
	}
}

// cloneSummary gives progress a copy the dispatching goroutine never
// touches again.
func cloneSummary(s Summary) Summary {
	s.Errors = slices.Clone(s.Errors)
	return s
}
