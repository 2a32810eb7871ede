package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

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
// Writing a record whose original sequence was already dead-lettered
// within the stream's duplicate window is a success that stores nothing:
// the caller may then acknowledge the original. Only after a nil error may
// the original be acknowledged; on an error it must stay unacknowledged.
// Without a deadline on ctx the jetstream handle's default timeout applies.
func (w *Writer) Write(ctx context.Context, r Record) error {
	if r.FailedAt.IsZero() {
		r.FailedAt = w.cfg.Now()
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("dead letter of %s seq %d: %w", r.OriginalSubject, r.OriginalSeq, err)
	}
	m := r.Msg()
	ack, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectStream(pathupdate.DeadLetterStream))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return fmt.Errorf("write dead letter of %s seq %d to %s: stream %s is missing (a worker creates it at start): %w",
				r.OriginalSubject, r.OriginalSeq, m.Subject, pathupdate.DeadLetterStream, err)
		}
		return fmt.Errorf("write dead letter of %s seq %d to %s: %w", r.OriginalSubject, r.OriginalSeq, m.Subject, err)
	}
	w.cfg.Logger.Debug().
		Str("subject", m.Subject).Uint64("seq", ack.Sequence).Bool("duplicate", ack.Duplicate).
		Str("reason", r.Reason).Int("errcode", r.ErrCode).Uint64("original_seq", r.OriginalSeq).
		Msg("dead letter stored")
	return nil
}
