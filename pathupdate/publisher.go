package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Defaults and limits of the publisher.
const (
	// DefaultMaxPending is the jetstream handle's own default limit of
	// async publishes awaiting their PubAck, so a publisher on a default
	// handle never stalls on it. With a quarter of it (1024, the default
	// until 2026-12) PublishLines ran at 0.75 of a raw async publisher
	// with that handle's window, with this one at 0.9 (benchmark scenario
	// 1, docs/benchmarks.md).
	DefaultMaxPending = 4000
	DefaultAckTimeout = 5 * time.Second
	// DefaultAckAttempts: an event PublishLines, PublishBatch or
	// PublishOrdered sent is sent again, twice at most, when its PubAck
	// does not come within AckTimeout. With 4,000 publishes in flight a
	// server storing fewer than 800 a second (a loaded or slow-disk one)
	// answers the last of them after 5 s: a timeout then is a queue, not
	// a loss, and failing it would hold back the rest of its waybill.
	DefaultAckAttempts = 3
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
	// PubAck (at most one per waybill); default DefaultMaxPending (4000).
	// It reads up to ReadAheadPerPending times as many lines ahead.
	MaxPending int
	// AckTimeout is how long one publish waits for its PubAck; default
	// DefaultAckTimeout (5s). A shorter deadline on the caller's context
	// wins for Publish.
	AckTimeout time.Duration
	// AckAttempts is how many times PublishLines, PublishBatch and
	// PublishOrdered send an event whose PubAck does not come within
	// AckTimeout before they count it failed; default
	// DefaultAckAttempts (3). Every send carries the same Nats-Msg-Id:
	// within the stream's duplicate window it is stored once. Publish
	// and PublishWithID send once (the caller's context is the bound).
	AckAttempts int
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
	if c.AckAttempts == 0 {
		c.AckAttempts = DefaultAckAttempts
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
	if c.AckAttempts < 1 {
		errs.Add("AckAttempts", "%d: use a positive count (default %d)", c.AckAttempts, DefaultAckAttempts)
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
	msgID, err := publishID(ev, msgID)
	if err != nil {
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

// publishID checks ev and a caller-given msgID and returns the
// Nats-Msg-Id to send: msgID, or ev.ID() when it is empty.
func publishID(ev Event, msgID string) (string, error) {
	if err := validateForPublish(ev); err != nil {
		return "", err
	}
	if msgID == "" {
		return ev.ID(), nil
	}
	return msgID, checkMsgID(msgID)
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
