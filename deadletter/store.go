package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Defaults of StoreConfig.
const (
	ConcurrencyDefault    = 16
	RequestTimeoutDefault = 10 * time.Second
	// MaxConcurrency bounds StoreConfig.Concurrency: each unit is a
	// goroutine and a delete in flight.
	MaxConcurrency = 1024
)

// scanBatch is how many records a scan lets the server send ahead; it is
// what bounds a listing's memory, whatever the stream holds.
const scanBatch = 512

// idleCheck is how long a scan waits for the next record before it asks
// the server whether anything is left (records deleted while it reads can
// leave it waiting for one that never comes).
const idleCheck = 250 * time.Millisecond

// Errors a caller decides on (errors.Is).
var (
	// ErrNotFound: no dead letter has that sequence (never had, or it was
	// replayed or purged).
	ErrNotFound = errors.New("no such dead letter")
	// ErrNoStream: a stream pathupdate needs does not exist yet.
	ErrNoStream = errors.New("stream does not exist: start a worker first (pathupdate worker creates the streams)")
	// ErrSetTokenManyWaybills: ReplayOptions.SetToken with a filter that
	// does not name one waybill, without AllowManyWaybills. A token belongs
	// to one waybill's order.
	// The text names the CLI flags (--waybill: Filter.Waybill,
	// --all-waybills: ReplayOptions.AllowManyWaybills).
	ErrSetTokenManyWaybills = errors.New("a token belongs to one waybill: setting it is refused for a filter that may span several waybills; " +
		"add --waybill W, or --all-waybills to set it on every waybill selected")
)

// StoreConfig configures a Store. The zero value is usable.
type StoreConfig struct {
	// Logger gets a warning per unreadable record and a line per replay
	// and purge. Default: the zero zerolog.Logger, which writes nothing.
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// TracerProvider, when set, gets a span per replayed record, in the
	// trace the dead letter kept (Record.TraceParent). Default nil: no
	// spans; the replayed message still carries the record's trace
	// context, so the worker's spans join its trace.
	TracerProvider trace.TracerProvider
	// Concurrency bounds the deletes in flight at once: Replay's removals
	// of replayed records and Purge's record by record; default
	// ConcurrencyDefault (16). Replay publishes as `pathupdate publish`
	// does (pathupdate.Publisher.PublishOrdered: up to
	// pathupdate.DefaultMaxPending in flight), one waybill's events always
	// one after the other.
	Concurrency int
	// RequestTimeout bounds one publish (its PubAck) or delete; default
	// RequestTimeoutDefault (10s).
	RequestTimeout time.Duration
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c StoreConfig) WithDefaults() StoreConfig {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = RequestTimeoutDefault
	}
	return c
}

// Validate reports every field of c (after WithDefaults) that is wrong, as
// pathupdate.FieldErrors.
func (c StoreConfig) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "deadletter: StoreConfig."}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		errs.Add("Concurrency", "%d: use 1 to %d (default %d)", c.Concurrency, MaxConcurrency, ConcurrencyDefault)
	}
	if c.RequestTimeout <= 0 {
		errs.Add("RequestTimeout", "%s: use a positive duration (default %s)", c.RequestTimeout, RequestTimeoutDefault)
	}
	return errs.Err()
}

// Store is the dead-letter stream as operators see it: list, show, count,
// replay and purge records. It reads through ordered consumers, so a
// listing streams in stream order and never holds more than a batch. It is
// safe for concurrent use; two replays of the same records at once
// publish each event once (see Replay).
type Store struct {
	js     jetstream.JetStream
	pub    *pathupdate.Publisher // Replay's publishes, on js
	cfg    StoreConfig
	log    zerolog.Logger
	tracer trace.Tracer // nil: tracing off
}

// NewStore returns a Store on js, a handle the caller owns.
func NewStore(js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if js == nil {
		return nil, errors.New("NewStore: nil jetstream.JetStream")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// No TracerProvider: Replay starts its own span per record, in the
	// record's trace, instead of the publisher's.
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{AckTimeout: cfg.RequestTimeout, Logger: cfg.Logger})
	if err != nil {
		return nil, err // cannot happen: the timeout was validated
	}
	return &Store{js: js, pub: pub, cfg: cfg, log: cfg.Logger, tracer: pathupdate.TracerOf(cfg.TracerProvider)}, nil
}

// Get returns the dead letter with stream sequence seq; an error matching
// ErrNotFound when there is none, ErrMalformed when it cannot be read.
func (s *Store) Get(ctx context.Context, seq uint64) (Record, error) {
	st, err := s.stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		return Record{}, err
	}
	if seq == 0 {
		return Record{}, fmt.Errorf("%w: seq 0 (sequences start at 1)", ErrNotFound)
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, fmt.Errorf("%w: seq %d is not in %s (never was, or it was replayed or purged)", ErrNotFound, seq, pathupdate.DeadLetterStream)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get dead letter %d: %w", seq, err)
	}
	return FromRawMsg(raw)
}

// stream looks a stream up; a missing one is ErrNoStream naming it.
func (s *Store) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%s: %w", name, ErrNoStream)
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", name, err)
	}
	return st, nil
}

// snapshot is the dead-letter stream at the start of an operation. Every
// operation ends at last: records written meanwhile (a replayed event that
// failed again, say) are left for the next run, so a replay cannot chase
// its own tail.
type snapshot struct {
	stream jetstream.Stream
	last   uint64
	// onSubject counts the records on the filter's subject (the whole
	// stream without a waybill), before the other criteria.
	onSubject uint64
	empty     bool // nothing can match: no need to read
}

func (s *Store) snapshot(ctx context.Context, f Filter) (snapshot, error) {
	if err := f.Validate(); err != nil {
		return snapshot{}, err
	}
	st, err := s.stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		return snapshot{}, err
	}
	info := st.CachedInfo()
	n := info.State.Msgs
	if f.oneWaybill() {
		if info, err = st.Info(ctx, jetstream.WithSubjectFilter(f.subject())); err != nil {
			return snapshot{}, fmt.Errorf("stream %s: %w", pathupdate.DeadLetterStream, err)
		}
		n = info.State.Subjects[f.subject()]
	}
	snap := snapshot{stream: st, last: info.State.LastSeq, onSubject: n}
	snap.empty = n == 0 || f.startSeq() > snap.last ||
		!f.Since.IsZero() && info.State.LastTime.Before(f.Since.Add(-SinceSlack))
	return snap, nil
}

// scan calls fn with every readable record of snap that f selects, in
// stream order, one at a time. headersOnly leaves Record.Event empty.
// Unreadable records go to bad. It reads through an ordered consumer
// starting where the server can start (subject, sequence, time) and stops
// at snap.last.
func (s *Store) scan(ctx context.Context, snap snapshot, f Filter, headersOnly bool, fn func(Record) error, bad func(seq uint64, err error)) error {
	if snap.empty {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.subject()},
		HeadersOnly:       headersOnly,
		InactiveThreshold: time.Minute,
	}
	switch {
	case f.startSeq() > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.startSeq()
	case !f.Since.IsZero():
		start := f.Since.Add(-SinceSlack)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := snap.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", pathupdate.DeadLetterStream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(scanBatch))
	if err != nil {
		return fmt.Errorf("read %s: %w", pathupdate.DeadLetterStream, err)
	}
	defer func() {
		it.Stop()
		s.deleteConsumer(ctx, cons)
	}()

	var lastSeen uint64
	for {
		nctx, cancel := context.WithTimeout(ctx, idleCheck)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				if done, err := drained(ctx, cons, lastSeen); err != nil || done {
					return err
				}
				continue
			}
			return fmt.Errorf("read %s after seq %d: %w", pathupdate.DeadLetterStream, lastSeen, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s after seq %d: %w", pathupdate.DeadLetterStream, lastSeen, err)
		}
		seq := meta.Sequence.Stream
		if seq > snap.last {
			return nil
		}
		lastSeen = seq
		if r, err := FromMsg(m); err != nil {
			s.log.Warn().Err(err).Uint64("seq", seq).Str("subject", m.Subject()).Msg("unreadable dead letter skipped")
			if bad != nil {
				bad(seq, err)
			}
		} else if f.Match(r) {
			if err := fn(r); err != nil {
				return err
			}
		}
		if meta.NumPending == 0 || seq == snap.last {
			return nil
		}
	}
}

// drained asks the server whether the consumer has nothing left to send
// that the scan has not seen.
func drained(ctx context.Context, cons jetstream.Consumer, lastSeen uint64) (bool, error) {
	info, err := cons.Info(ctx)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrOrderedConsumerNotCreated) {
		return false, nil // the ordered consumer is being recreated
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", pathupdate.DeadLetterStream, err)
	}
	return info.NumPending == 0 && (info.Delivered.Consumer == 0 || info.Delivered.Stream <= lastSeen), nil
}

// deleteConsumer removes the scan's server-side consumer at once rather
// than leaving it to expire.
func (s *Store) deleteConsumer(ctx context.Context, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	if err := s.js.DeleteConsumer(ctx, pathupdate.DeadLetterStream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug().Err(err).Str("consumer", info.Name).Msg("delete scan consumer (it expires by itself)")
	}
}

// jsErrCodeSequenceNotFound is the server's "sequence N not found" (the
// answer to deleting a message that is already gone); nats.go has no
// constant for it.
const jsErrCodeSequenceNotFound jetstream.ErrorCode = 10043

// remove deletes dead letter seq. A record that is already gone (another
// replay or a purge removed it first) is no error: removed then says this
// call did not remove it. Two replays or purges over the same records may
// therefore run at once.
func (s *Store) remove(ctx context.Context, st jetstream.Stream, seq uint64) (removed bool, err error) {
	err = st.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jsErrCodeSequenceNotFound || apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound) {
		return false, nil
	}
	// nats.go reports a refused delete as ErrMsgDeleteUnsuccessful with the
	// server's error (10043 for a sequence already deleted) only in its
	// text, so the code cannot be matched: ask whether the record is still
	// there. Get answers ErrMsgNotFound by code.
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return false, nil
		}
	}
	return false, err
}
