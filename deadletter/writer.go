package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// WriterConfig configures a Writer. The zero value is usable.
type WriterConfig struct {
	// Logger; default none (the zero zerolog.Logger writes nothing).
	Logger zerolog.Logger
	// Now fills Record.FailedAt when the caller left it zero; default
	// time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c WriterConfig) WithDefaults() WriterConfig {
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Writer stores dead letters in LOGISTICS_DEADLETTER. It is safe for
// concurrent use.
type Writer struct {
	js  jetstream.JetStream
	cfg WriterConfig
}

// NewWriter returns a Writer publishing on js, a handle the caller owns.
func NewWriter(js jetstream.JetStream, cfg WriterConfig) *Writer {
	return &Writer{js: js, cfg: cfg.WithDefaults()}
}

// Write stores r (FailedAt set to now when zero) and waits for the PubAck.
// An original too big to fit the server's max payload together with the
// record's headers (a hostile publish at that size: no valid event comes
// near it) is stored cut to fit, at a character boundary, with
// Record.TruncatedFrom saying how big it was; refusing it instead would
// leave the original unacknowledged forever and hold up its waybill.
// Writing a record whose original sequence was already dead-lettered
// within the stream's duplicate window is a success that stores nothing:
// the caller may then acknowledge the original. Only after a nil error may
// the original be acknowledged; on an error it must stay unacknowledged.
// Without a deadline on ctx the jetstream handle's default timeout applies.
func (w *Writer) Write(ctx context.Context, r Record) error {
	_, err := w.Append(ctx, r)
	return err
}

// Append is Write that also returns the dead letter's sequence in
// LOGISTICS_DEADLETTER (that of the record already stored, when the write
// was a duplicate).
func (w *Writer) Append(ctx context.Context, r Record) (seq uint64, err error) {
	if r.FailedAt.IsZero() {
		r.FailedAt = w.cfg.Now()
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("dead letter of %s seq %d: %w", r.OriginalSubject, r.OriginalSeq, err)
	}
	m := wireMsg(fit(r, w.js.Conn().MaxPayload()))
	ack, err := w.js.PublishMsg(ctx, m)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return 0, fmt.Errorf("write dead letter of %s seq %d to %s: stream %s is missing (a worker creates it at start): %w",
				r.OriginalSubject, r.OriginalSeq, m.Subject, pathupdate.DeadLetterStream, err)
		}
		return 0, fmt.Errorf("write dead letter of %s seq %d to %s: %w", r.OriginalSubject, r.OriginalSeq, m.Subject, err)
	}
	w.cfg.Logger.Debug().
		Str("subject", m.Subject).Uint64("seq", ack.Sequence).Bool("duplicate", ack.Duplicate).
		Str("reason", r.Reason).Int("errcode", r.ErrCode).Uint64("original_seq", r.OriginalSeq).
		Msg("dead letter stored")
	return ack.Sequence, nil
}

// wireMsg is r's message as Write publishes it: with the expected-stream
// header (what jetstream.WithExpectStream would add), so that fit counts
// every header byte.
func wireMsg(r Record) *nats.Msg {
	m := r.Msg()
	m.Header.Set(jetstream.ExpectedStreamHeader, pathupdate.DeadLetterStream)
	return m
}

// fit returns r with its Event cut so that the dead-letter message fits
// maxPayload (0 or less: unknown, r unchanged).
func fit(r Record, maxPayload int64) Record {
	if maxPayload <= 0 || int64(len(r.Event)+headerBytes(wireMsg(r).Header)) <= maxPayload {
		return r
	}
	cut := r
	cut.TruncatedFrom = len(r.Event)
	cut.Event = nil
	// The headers' size does not depend on the payload: measure them with
	// the truncation header in place, then take what is left.
	keep := int(maxPayload) - headerBytes(wireMsg(cut).Header)
	if keep <= 0 {
		return cut
	}
	for keep > 0 && keep < len(r.Event) && !utf8.RuneStart(r.Event[keep]) {
		keep-- // do not split a character: `deadletter show` prints the beginning
	}
	cut.Event = r.Event[:keep]
	return cut
}

// headerBytes is the size of h as NATS sends it ("NATS/1.0\r\n", one
// "Name: value\r\n" per value, "\r\n"), which counts against the max payload.
func headerBytes(h nats.Header) int {
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}
