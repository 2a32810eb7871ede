package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// ReplayOptions change what Replay does.
type ReplayOptions struct {
	// DryRun selects and prepares every record, reports each to Progress,
	// and publishes and removes nothing.
	DryRun bool
	// SetToken replaces the event's token before it is published (the fix
	// for 9300507 "incorrect token"). The event is decoded, given the
	// token and published in its canonical encoding. A filter without a
	// waybill is refused with ErrSetTokenManyWaybills unless
	// AllowManyWaybills.
	SetToken string
	// AllowManyWaybills lets SetToken apply to every waybill selected.
	AllowManyWaybills bool
	// IncludeInvalid replays records whose event is not a valid event for
	// its waybill too. By default they are skipped (ErrSkippedInvalid): a
	// worker would dead-letter them again at once as invalid_event.
	IncludeInvalid bool
	// Progress, when set, is called once per selected record after it was
	// replayed and removed (or skipped, or, in a dry run, prepared). Calls
	// come one at a time, possibly from different goroutines; cancelling
	// Replay's context from it is fine.
	Progress func(ReplayProgress)
}

// ReplayProgress reports one record.
type ReplayProgress struct {
	Record  Record // the dead letter (Event as stored)
	Subject string // the subject it was (or would be) published to
	MsgID   string // the Nats-Msg-Id it was (or would be) published with
	Event   []byte // the bytes published (or that would be): Record.Event, or with the new token
	// Duplicate: the trace stream already held MsgID (an interrupted
	// earlier replay published it); it was stored once.
	Duplicate bool
	TraceSeq  uint64 // sequence in LOGISTICS_TRACE; 0 in a dry run or when skipped
	// Skipped says why the record was left in place; nil otherwise.
	Skipped error
	Done    int // records reported so far, this one included
}

// ReplayResult counts what Replay did.
type ReplayResult struct {
	Replayed   int // published and removed (in a dry run: would be)
	Duplicates int // of Replayed, already in the trace stream from an interrupted replay
	Skipped    int // left in place; each reported to Progress with why
	// SkippedInvalid counts, of Skipped, the records skipped because their
	// event is not valid (ErrSkippedInvalid; see IncludeInvalid).
	SkippedInvalid int
	DryRun         bool
	Took           time.Duration
}

// ErrSkippedInvalid is matched (errors.Is) by ReplayProgress.Skipped for a
// record whose event a worker would refuse as invalid_event (not a valid
// event, or its waybill_id is not the waybill it was dead-lettered under):
// replaying it would only write a new dead letter. The text names the CLI
// flag (--include-invalid: ReplayOptions.IncludeInvalid).
var ErrSkippedInvalid = errors.New("not a valid event, so a worker would dead-letter it again at once (invalid_event): " +
	"fix and republish it at the source, or replay it anyway with --include-invalid")

// ReplayMsgID is the Nats-Msg-Id a replay of r uses: "replay-<dead-letter
// seq>-<original seq>". It depends on the record, not on the run, so a
// replay interrupted after the publish and run again within the trace
// stream's duplicate window publishes nothing new.
func ReplayMsgID(r Record) string {
	return "replay-" + strconv.FormatUint(r.Seq, 10) + "-" + strconv.FormatUint(r.OriginalSeq, 10)
}

// Replay republishes the event of every dead letter f selects to
// logistics.trace.<waybill>, then removes the dead letter.
//
// Order: records are read in dead-letter stream order and one waybill's
// are published one after the other, each after the previous one's
// PubAck, so every waybill's events reach the trace stream in their
// original order; different waybills go together, through the pipeline of
// `pathupdate publish` and the gateway (pathupdate.Publisher.PublishOrdered),
// and records are read while earlier ones are published (a bounded number
// at once, whatever the backlog). Replayed events come after whatever the
// waybill already has in the trace stream.
//
// Idempotency: each publish carries Nats-Msg-Id ReplayMsgID(r) and
// ReplaysHeader = r.Replays+1; a record is removed only after its PubAck.
// Removals run beside the publishing, StoreConfig.Concurrency at once: a
// waybill's next record waits for the previous one's PubAck, not for its
// removal. A replay stopped at any point (ctx cancelled, process killed) and run
// again publishes every event once, provided the second run comes within
// the trace stream's duplicate window (StreamsConfig.Duplicates, 2 min by
// default); after it, an event whose PubAck arrived but whose removal did
// not is published a second time (docs/deadletters.md). Once published, a
// record's removal is finished even if ctx is cancelled.
//
// Records written after Replay began (a replayed event that failed again)
// are left for the next run. Records that cannot be replayed are skipped
// and stay: a waybill that is not a valid waybill id (whatever subject the
// record was found on), an event a worker would refuse as invalid
// (ErrSkippedInvalid, unless IncludeInvalid), and with SetToken an event
// that cannot be decoded or names another waybill. A record another
// replay or a purge removed meanwhile counts as replayed: two replays of
// the same records at once both succeed and publish each event once
// (within the duplicate window). The first publish or removal error stops
// the replay: no record not yet published is published. What was
// replayed stays replayed and the result counts it. Cancelling ctx stops
// it the same way (the records already published are still removed), and
// Replay then returns ctx's error.
func (s *Store) Replay(ctx context.Context, f Filter, opts ReplayOptions) (ReplayResult, error) {
	start := s.cfg.Now()
	res := ReplayResult{DryRun: opts.DryRun}
	if opts.SetToken != "" {
		if f.Waybill == "" && !opts.AllowManyWaybills {
			return res, ErrSetTokenManyWaybills
		}
		probe := pathupdate.Event{Token: opts.SetToken, WaybillID: "W", ActionTime: 1, ActionType: pathupdate.ActionPickedUp, ActionMsg: "x"}
		if err := probe.Validate(); err != nil {
			return res, fmt.Errorf("the token to set: %w", err)
		}
	}
	snap, err := s.snapshot(ctx, f)
	if err != nil {
		return res, err
	}
	if !opts.DryRun {
		if _, err := s.stream(ctx, pathupdate.TraceStream); err != nil {
			return res, err
		}
	}
	run := &replayRun{s: s, opts: opts, stream: snap.stream, res: &res}
	if opts.DryRun {
		err = s.scan(ctx, snap, f, false, func(r Record) error {
			run.report(run.prepare(r), nil)
			return nil
		}, nil)
	} else {
		err = run.publishAll(ctx, snap, f)
	}
	res.Took = s.cfg.Now().Sub(start)
	s.log.Info().Str("filter", f.String()).Bool("dry_run", opts.DryRun).Int("replayed", res.Replayed).
		Int("duplicates", res.Duplicates).Int("skipped", res.Skipped).Int("skipped_invalid", res.SkippedInvalid).
		Err(err).Msg("dead-letter replay")
	return res, err
}

type replayRun struct {
	s      *Store
	opts   ReplayOptions
	stream jetstream.Stream

	mu   sync.Mutex // guards res, done and Progress calls
	res  *ReplayResult
	done int

	failMu sync.Mutex // apart from mu: the publishing goroutine asks, and must not wait for a Progress call
	failed error      // the first publish or removal error
}

// fail keeps the first failure.
func (run *replayRun) fail(err error) {
	run.failMu.Lock()
	defer run.failMu.Unlock()
	if run.failed == nil {
		run.failed = err
	}
}

// failure is the first failure so far, or nil.
func (run *replayRun) failure() error {
	run.failMu.Lock()
	defer run.failMu.Unlock()
	return run.failed
}

// item is one record ready to go.
type item struct {
	rec     Record
	subject string
	msgID   string
	data    []byte
	skip    error
}

func (run *replayRun) prepare(r Record) item {
	it := item{rec: r, msgID: ReplayMsgID(r), data: r.Event}
	if !pathupdate.ValidWaybillID(r.WaybillID) {
		// The subject it was found on is not a trace subject's waybill:
		// republishing there would reach no worker (logistics.trace.$JS,
		// .*, ...).
		it.skip = errors.New("its waybill is not a valid waybill id (1 to 64 of A-Z a-z 0-9 - _), so it has no trace subject: it cannot be replayed (purge it)")
		return it
	}
	if r.TruncatedFrom > 0 {
		it.skip = fmt.Errorf("it holds only the first part of an event of %d bytes (too large for a dead letter): it cannot be replayed (purge it)", r.TruncatedFrom)
		return it
	}
	it.subject = pathupdate.TraceSubject(r.WaybillID)
	if run.opts.SetToken != "" {
		data, err := withToken(r.Event, run.opts.SetToken, r.WaybillID)
		if err != nil {
			it.skip = fmt.Errorf("cannot set its token: %w", err)
			return it
		}
		it.data = data
	}
	if !run.opts.IncludeInvalid {
		if _, err := pathupdate.DecodeEventFor(it.data, r.WaybillID); err != nil {
			it.skip = fmt.Errorf("%w: %w", ErrSkippedInvalid, err)
		}
	}
	return it
}

// withToken returns event with its token replaced, canonically encoded.
// An event whose only fault is its token (missing, empty, too long) is
// repaired too.
func withToken(event []byte, token, waybill string) ([]byte, error) {
	ev, err := pathupdate.DecodeEvent(event)
	var ie *pathupdate.InvalidEventError
	if errors.As(err, &ie) && ie.Field == "token" {
		var fields map[string]json.RawMessage
		if json.Unmarshal(event, &fields) != nil {
			return nil, err
		}
		fields["token"], _ = json.Marshal(token) // a string always marshals
		patched, _ := json.Marshal(fields)       // raw messages from Unmarshal always marshal
		ev, err = pathupdate.DecodeEvent(patched)
	}
	if err != nil {
		return nil, err
	}
	if ev.WaybillID != waybill {
		return nil, fmt.Errorf("its waybill_id %q is not the waybill %q it was dead-lettered under", ev.WaybillID, waybill)
	}
	ev.Token = token
	return ev.Encode(), nil
}

// errStopped is what the pipeline's Check answers once the replay has
// failed or ctx is cancelled: the record is not published, and the reason
// is already known (run.failure, ctx).
var errStopped = errors.New("replay stopped before this record")

// replayed is a record whose event the trace stream acknowledged, on its
// way to removal.
type replayed struct {
	it  *item
	ack *jetstream.PubAck
}

// replayWindow bounds the records a replay holds at once (read and not
// yet removed): removals, one request each, are what a replay waits on, so
// a window the size of the publisher's read-ahead would only hold more
// records in memory, not go faster.
const replayWindow = 16_384

// publishAll reads the records and hands each to the publisher's ordered
// pipeline under its waybill: a waybill's records are published one after
// the other, each once the previous one is acknowledged, different
// waybills' together. Each acknowledged record goes to one of
// StoreConfig.Concurrency removers, which remove it and report it. The
// first failure stops the reading and holds back every record not yet
// published; the records already published are removed all the same.
//
// At most window records are read and not yet finished (waiting,
// in flight, or waiting for their removal): the reading waits for a slot,
// so memory stays bounded whatever the backlog, and the removal queue
// never fills (the pipeline's goroutine hands it records and must not
// block).
func (run *replayRun) publishAll(ctx context.Context, snap snapshot, f Filter) error {
	s := run.s
	window := replayWindow
	slots := make(chan struct{}, window)
	removals := make(chan replayed, window)
	var removers sync.WaitGroup
	for range s.cfg.Concurrency {
		removers.Go(func() {
			for r := range removals {
				run.remove(ctx, r)
				<-slots
			}
		})
	}
	scanErr := s.pub.PublishOrdered(ctx, pathupdate.OrderedConfig{
		MaxPending:    pathupdate.DefaultMaxPending,
		ReadAhead:     window,
		HaltOnFailure: true,
		Check: func() error {
			if run.failure() != nil || ctx.Err() != nil {
				return errStopped
			}
			return nil
		},
		Span: func(m pathupdate.OrderedMsg) (context.Context, trace.Span) {
			r := m.Ref.(*item).rec
			return s.replaySpan(r.traceContext(ctx), r)
		},
		Settled: func(m pathupdate.OrderedMsg, ack *jetstream.PubAck, err error) {
			it := m.Ref.(*item)
			if err != nil {
				if !errors.Is(err, errStopped) && !errors.Is(err, pathupdate.ErrHeldBack) {
					run.fail(replayError(it, err))
				}
				<-slots
				return
			}
			removals <- replayed{it: it, ack: ack} // never blocks: it holds window
		},
	}, func(publish func(pathupdate.OrderedMsg)) error {
		return s.scan(ctx, snap, f, false, func(r Record) error {
			if err := run.failure(); err != nil {
				return err
			}
			it := run.prepare(r)
			if it.skip != nil {
				run.report(it, nil)
				return nil
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			h := nats.Header{}
			h.Set(ReplaysHeader, strconv.Itoa(r.Replays+1))
			publish(pathupdate.OrderedMsg{Waybill: r.WaybillID, MsgID: it.msgID, Data: it.data, Header: h, Ref: &it})
			return nil
		}, nil)
	})
	close(removals)
	removers.Wait()
	if err := run.failure(); err != nil {
		return err // what stopped the pipeline stopped the scan too
	}
	if scanErr != nil {
		return scanErr
	}
	return ctx.Err() // cancelled once every record was read: say so all the same
}

// replayError is why a record's publish failed, as the caller reads it.
func replayError(it *item, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		err = fmt.Errorf("%s: %w: %w", pathupdate.TraceStream, ErrNoStream, err)
	}
	return fmt.Errorf("replay dead letter %d to %s: %w", it.rec.Seq, it.subject, err)
}

// remove removes a replayed record and reports it. Published, the record
// must be removed now even if ctx was cancelled meanwhile, or a re-run
// after the duplicate window would publish the event again.
func (run *replayRun) remove(ctx context.Context, r replayed) {
	s, it := run.s, r.it
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	_, err := s.remove(dctx, run.stream, it.rec.Seq)
	dcancel()
	if err != nil {
		run.fail(fmt.Errorf("dead letter %d was replayed (%s seq %d) but not removed: %w "+
			"(run the replay again within the duplicate window: it removes it without publishing it again)",
			it.rec.Seq, pathupdate.TraceStream, r.ack.Sequence, err))
		return
	}
	s.log.Debug().Uint64("seq", it.rec.Seq).Str("subject", it.subject).Uint64("trace_seq", r.ack.Sequence).
		Bool("duplicate", r.ack.Duplicate).Msg("dead letter replayed")
	run.report(*it, r.ack)
}

func (run *replayRun) report(it item, ack *jetstream.PubAck) {
	run.mu.Lock()
	defer run.mu.Unlock()
	p := ReplayProgress{Record: it.rec, Subject: it.subject, MsgID: it.msgID, Event: it.data, Skipped: it.skip}
	switch {
	case it.skip != nil:
		run.res.Skipped++
		if errors.Is(it.skip, ErrSkippedInvalid) {
			run.res.SkippedInvalid++
		}
	default:
		run.res.Replayed++
		if ack != nil {
			p.TraceSeq, p.Duplicate = ack.Sequence, ack.Duplicate
			if ack.Duplicate {
				run.res.Duplicates++
			}
		}
	}
	run.done++
	p.Done = run.done
	if run.opts.Progress != nil {
		run.opts.Progress(p)
	}
}

// replaySpan starts the span of one record's replay in the trace the
// record kept; ctx and nil when tracing is off. Its attributes are the
// record's reason, errcode and replay count, never its waybill; the
// publisher ends it with the PubAck's stream sequence, or an error status.
func (s *Store) replaySpan(ctx context.Context, r Record) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, nil
	}
	return s.tracer.Start(ctx, "replay "+pathupdate.TraceStream, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("pathupdate.reason", r.Reason), attribute.Int("pathupdate.errcode", r.ErrCode),
			attribute.Int("pathupdate.replays", r.Replays+1), attribute.Int64("pathupdate.deadletter.seq", int64(r.Seq))))
}
