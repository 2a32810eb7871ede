package pathupdate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/internal/keyorder"
)

// Defaults and limits of the publisher.
const (
	DefaultMaxPending = 1024
	DefaultAckTimeout = 5 * time.Second
	// MaxLineBytes is the longest JSON line PublishLines reads; a longer
	// line counts as invalid (far beyond any valid event).
	MaxLineBytes = 1 << 20
	// MaxLineErrors is how many LineErrors a Summary keeps (the first ones).
	MaxLineErrors = 100
	// ProgressEvery is how many lines PublishLines settles between two
	// calls of its progress function.
	ProgressEvery = 1000
	// MaxMsgIDLen bounds a caller-given Nats-Msg-Id.
	MaxMsgIDLen = 256
)

// PublisherConfig configures a Publisher. The zero value is usable.
type PublisherConfig struct {
	// MaxPending bounds the publishes PublishLines has in flight without a
	// PubAck; default DefaultMaxPending (1024).
	MaxPending int
	// AckTimeout is how long one publish waits for its PubAck; default
	// DefaultAckTimeout (5s). A shorter deadline on the caller's context
	// wins for Publish.
	AckTimeout time.Duration
	// Logger; default zerolog.Nop().
	Logger zerolog.Logger
	// TracerProvider, when set, gets a span per publish, and the message
	// carries its trace context (traceparent). Default nil: no spans; a
	// trace context the caller's ctx already carries (a gateway request's)
	// still goes onto the message.
	TracerProvider trace.TracerProvider
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c PublisherConfig) WithDefaults() PublisherConfig {
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	return c
}

// Validate reports, as FieldErrors, every field of c (after WithDefaults)
// that is wrong.
func (c PublisherConfig) Validate() error {
	errs := FieldErrors{Prefix: "pathupdate: PublisherConfig."}
	if c.MaxPending < 1 {
		errs.Add("MaxPending", "%d: use a positive count (default %d)", c.MaxPending, DefaultMaxPending)
	}
	if c.AckTimeout <= 0 {
		errs.Add("AckTimeout", "%s: use a positive duration (default %s)", c.AckTimeout, DefaultAckTimeout)
	}
	return errs.Err()
}

// Publisher publishes trace events to LOGISTICS_TRACE and waits for each
// PubAck. It is safe for concurrent use. It creates no streams: a worker
// (or EnsureStreams) does.
type Publisher struct {
	js     jetstream.JetStream
	cfg    PublisherConfig
	log    zerolog.Logger
	tracer trace.Tracer // nil: tracing off
}

// NewPublisher returns a Publisher on js, a handle the caller owns (and
// closes). Any js works: PublishLines bounds its own pending acks.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("NewPublisher: nil jetstream.JetStream")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{js: js, cfg: cfg, log: cfg.Logger, tracer: TracerOf(cfg.TracerProvider)}, nil
}

// PublishResult is what the stream answered to one publish.
type PublishResult struct {
	Seq       uint64 // stream sequence; of the earlier copy when Duplicate
	Duplicate bool   // the stream already held this Nats-Msg-Id within its duplicate window
	MsgID     string // the Nats-Msg-Id sent
}

// Publish validates ev, publishes its canonical encoding (Event.Encode) to
// TraceSubject(ev.WaybillID) with Nats-Msg-Id = ev.ID(), and waits for the
// PubAck. An invalid event is refused with an error matching
// ErrInvalidEvent and nothing is published. Publishing the same event
// again within the stream's duplicate window stores nothing and answers
// Duplicate.
func (p *Publisher) Publish(ctx context.Context, ev Event) (PublishResult, error) {
	return p.PublishWithID(ctx, ev, "")
}

// PublishWithID is Publish with a caller-chosen Nats-Msg-Id (an upstream
// idempotency key, say); an empty msgID means ev.ID(). The id must be a
// single line of at most MaxMsgIDLen bytes.
func (p *Publisher) PublishWithID(ctx context.Context, ev Event, msgID string) (PublishResult, error) {
	if err := validateForPublish(ev); err != nil {
		return PublishResult{}, err
	}
	if msgID == "" {
		msgID = ev.ID()
	} else if err := checkMsgID(msgID); err != nil {
		return PublishResult{}, err
	}
	ctx, span := publishSpan(ctx, p.tracer)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	subject := TraceSubject(ev.WaybillID)
	m := &nats.Msg{Subject: subject, Data: ev.Encode()}
	m.Header = InjectTrace(ctx, m.Header)
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(TraceStream))
	if err != nil {
		endPublish(span, 0, false, err)
		return PublishResult{MsgID: msgID}, publishError(subject, err)
	}
	endPublish(span, ack.Sequence, ack.Duplicate, nil)
	if ack.Duplicate {
		p.log.Debug().Str("subject", subject).Str("msg_id", msgID).Uint64("seq", ack.Sequence).Msg("duplicate publish, stored once")
	}
	return PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate, MsgID: msgID}, nil
}

// validateForPublish makes sure the error matches ErrInvalidEvent whoever wrote it.
func validateForPublish(ev Event) error {
	err := ev.Validate()
	if err == nil || errors.Is(err, ErrInvalidEvent) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
}

func checkMsgID(id string) error {
	if len(id) > MaxMsgIDLen {
		return fmt.Errorf("message id is %d bytes long, more than %d", len(id), MaxMsgIDLen)
	}
	// A header value cannot hold a line break, and leading or trailing
	// blanks would be trimmed on the way, changing the id.
	if strings.ContainsAny(id, "\r\n\x00") || strings.TrimSpace(id) != id {
		return fmt.Errorf("message id %q must be one line without leading or trailing blanks", id)
	}
	return nil
}

// publishError explains the one failure a producer meets first: no stream.
func publishError(subject string, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("publish to %s: no JetStream stream answered: stream %s is missing or JetStream is off "+
			"(a pathupdate worker creates the stream when it starts): %w", subject, TraceStream, err)
	}
	return fmt.Errorf("publish to %s: %w", subject, err)
}

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

// PublishLines reads JSON lines from r (one event a line, blank lines
// skipped, lines up to MaxLineBytes) and publishes every valid one as
// Publish would, in input order, asynchronously with at most MaxPending
// unacknowledged. Invalid lines are counted with their line numbers and not published.
//
// Order per waybill is kept across failures: a line is published only
// once the previous line of its waybill is settled (lines of different
// waybills still go out together), and once a line of a waybill is not
// acknowledged the later lines of that waybill are not published but
// counted as Failed (ErrHeldBack). Publishing the same input again then
// puts every waybill's events into the stream in input order, the ones
// already stored being duplicates within the duplicate window.
// Every line read before ctx was cancelled or reading failed is published
// in its turn and its PubAck awaited (each for at most AckTimeout), so the
// Summary is exact. The error is non-nil
// only for a reading failure or ctx; publish failures are counted in
// Summary.Failed. progress, if not nil, is called every ProgressEvery lines
// and once at the end, never concurrently.
func (p *Publisher) PublishLines(ctx context.Context, r io.Reader, progress func(Summary)) (Summary, error) {
	if progress == nil {
		progress = func(Summary) {}
	}
	// One waybill's lines go one after the other; at most MaxPending
	// waybills have a publish in flight.
	run, err := keyorder.New(keyorder.Config{Concurrency: p.cfg.MaxPending, Queue: p.cfg.MaxPending})
	if err != nil {
		return Summary{}, err // cannot happen: Validate checked MaxPending
	}
	t := &tally{progress: progress}
	err = p.sendLines(ctx, r, run, t)
	_ = run.Wait() // every failure is counted in t
	sum := t.summary()
	progress(cloneSummary(sum))
	return sum, err
}

// ErrHeldBack is matched (errors.Is) by the LineError of a line that
// PublishLines did not publish because an earlier line of the same waybill
// was not acknowledged: publishing it would put the waybill's events out
// of order once the earlier one is published again.
var ErrHeldBack = errors.New("not published: held back behind an earlier event of its waybill that was not acknowledged")

// unacked is the failure of one line's publish; the lines of its waybill
// that it holds back name its line.
type unacked struct {
	line int
	err  error
}

func (e *unacked) Error() string { return e.err.Error() }

func (e *unacked) Unwrap() error { return e.err }

// tally counts what happened to each line; lines settle in any order.
type tally struct {
	mu       sync.Mutex
	sum      Summary
	settled  int
	progress func(Summary) // called under mu: never concurrently
}

// line counts one settled line: err nil for a stored one.
func (t *tally) line(n int, err error, duplicate bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
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

func (t *tally) summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sum
}

// sendLines reads r and gives every valid line to run under its waybill;
// every line settles in t.
func (p *Publisher) sendLines(ctx context.Context, r io.Reader, run *keyorder.Runner, t *tally) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish lines: stopped before line %d: %w", n, err)
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
			t.line(n, fmt.Errorf("%w: line longer than %d bytes", ErrInvalidEvent, MaxLineBytes), false)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := DecodeEvent(line)
		if err == nil {
			err = validateForPublish(ev) // DecodeEvent validates; this only guarantees the sentinel
		}
		if err != nil {
			t.line(n, err, false)
			continue
		}
		// A line read after cancellation is not published.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish lines: stopped at line %d: %w", n, err)
		}
		turn := &lineTurn{sent: make(chan struct{})}
		if err := run.Go(ctx, ev.WaybillID, p.lineTask(ev, n, t, turn)); err != nil {
			return fmt.Errorf("publish lines: stopped before line %d: %w", n, err)
		}
		// The next line is read only once this one was sent (or held
		// back), so publishes reach the stream in input order, as the
		// lines came; meanwhile earlier lines' PubAcks are awaited
		// concurrently. A line waits here while its waybill has one in
		// flight.
		select {
		case <-turn.sent:
		case <-ctx.Done():
			turn.giveUp() // not published unless it already was
			return fmt.Errorf("publish lines: stopped before line %d: %w", n, ctx.Err())
		}
	}
}

// lineTurn is the handover of one line between the reading goroutine and
// the task that publishes it.
type lineTurn struct {
	state atomic.Int32  // 0 waiting, 1 taken by the task, 2 given up by the reader
	sent  chan struct{} // closed once the line was sent or held back
}

// take reports whether the task may go ahead (the reader has not given the
// line up).
func (l *lineTurn) take() bool { return l.state.CompareAndSwap(0, 1) }

// giveUp keeps a line that was not taken yet from being published.
func (l *lineTurn) giveUp() { l.state.CompareAndSwap(0, 2) }

// lineTask publishes line n and waits for its PubAck. Once it fails, the
// runner holds back the later lines of its waybill. A line the reader gave
// up (ctx ended while it waited for its turn) is neither published nor
// counted.
func (p *Publisher) lineTask(ev Event, n int, t *tally, turn *lineTurn) keyorder.Task {
	return keyorder.Task{
		Run: func() error {
			if !turn.take() {
				return nil
			}
			ctx, span := publishSpan(context.Background(), p.tracer) // each line starts its own trace
			future, deadline, err := p.send(ctx, ev)
			close(turn.sent)
			var ack *jetstream.PubAck
			if err == nil {
				ack, err = awaitAck(future, deadline)
			}
			if err != nil {
				endPublish(span, 0, false, err)
				p.log.Debug().Int("line", n).Err(MaskPhonesError(err)).Msg("publish not acknowledged")
				t.line(n, err, false)
				return &unacked{line: n, err: err}
			}
			endPublish(span, ack.Sequence, ack.Duplicate, nil)
			t.line(n, nil, ack.Duplicate)
			return nil
		},
		HeldBack: func(e *keyorder.HeldBackError) {
			defer close(turn.sent)
			if !turn.take() {
				return
			}
			var first *unacked
			errors.As(e, &first) // every failure of a line task is one
			t.line(n, fmt.Errorf("%w (line %d of waybill %s was not): publish the input again", ErrHeldBack, first.line, ev.WaybillID), false)
		},
	}
}

// send publishes one event without waiting for its PubAck, which is due by
// deadline (AckTimeout from now). A handle with its own (lower) async
// limit stalls the publish: it is tried again until the deadline. The
// message carries ctx's trace context.
func (p *Publisher) send(ctx context.Context, ev Event) (jetstream.PubAckFuture, time.Time, error) {
	deadline := time.Now().Add(p.cfg.AckTimeout)
	msgID := ev.ID()
	subject := TraceSubject(ev.WaybillID)
	data := ev.Encode()
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

func awaitAck(f jetstream.PubAckFuture, deadline time.Time) (*jetstream.PubAck, error) {
	subject := f.Msg().Subject
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, publishError(subject, err)
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
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

// cloneSummary gives progress a copy the settling goroutine never touches.
func cloneSummary(s Summary) Summary {
	s.Errors = slices.Clone(s.Errors)
	return s
}
