package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// A message published to a subject with a literal wildcard token
// (`nats pub --jetstream 'logistics.trace.*' ...`, or `logistics.trace.>`)
// matches the trace stream, gets a PubAck, and is stored under its own
// subject: the partition transform does not apply to it. No partition
// consumer sees it, so without this it would sit in the stream forever,
// invisible. Every worker consumes such messages through one shared
// consumer and dead-letters them as invalid events.

// UnpartitionedConsumerName is the durable consumer that takes messages
// the trace stream stored without a partition, for a deployment whose
// Config.Consumer is prefix (pathupdate.UnpartitionedConsumer).
func UnpartitionedConsumerName(prefix string) string { return pathupdate.UnpartitionedConsumer(prefix) }

// startUnpartitioned creates the consumer of unpartitioned messages and
// begins dead-lettering them. Any worker may hold any of them: they have no
// order to keep.
func (w *Worker) startUnpartitioned(ctx context.Context) error {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{
		Durable:       UnpartitionedConsumerName(w.cfg.Consumer),
		Description:   "pathupdate workers: messages stored without a partition (literal wildcard subjects), dead-lettered as invalid events",
		FilterSubject: pathupdate.UnpartitionedFilter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxAckPending: 16,
		MaxDeliver:    -1,
		PauseUntil:    w.OperatorPause().ConsumerPauseUntil(w.cfg.Now()),
	})
	if err != nil {
		return fmt.Errorf("worker: consumer %s on stream %s: %w", UnpartitionedConsumerName(w.cfg.Consumer), pathupdate.TraceStream, err)
	}
	w.applyPause(ctx, UnpartitionedConsumerName(w.cfg.Consumer))
	cc, err := cons.Consume(w.dropUnpartitioned, jetstream.PullMaxMessages(16))
	if err != nil {
		return fmt.Errorf("worker: consume %s: %w", UnpartitionedConsumerName(w.cfg.Consumer), err)
	}
	w.mu.Lock()
	w.unpartitioned = cc
	w.mu.Unlock()
	return nil
}

// stopUnpartitioned stops taking unpartitioned messages; what it holds
// comes back to another worker after AckWait.
func (w *Worker) stopUnpartitioned() {
	w.mu.Lock()
	cc := w.unpartitioned
	w.mu.Unlock()
	if cc == nil {
		return
	}
	cc.Stop()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
	}
}

// dropUnpartitioned dead-letters one unpartitioned message, as retry
// decides for an invalid event, and acks it once the dead letter is stored.
func (w *Worker) dropUnpartitioned(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	invalid := fmt.Errorf("%w: subject %q is not %s<waybill_id>: the trace stream stored it without a partition, so no worker would deliver it; publish each event to its waybill's own subject",
		pathupdate.ErrInvalidEvent, m.Subject(), pathupdate.TraceSubjectPrefix)
	d := w.cfg.Retry.Decide(retry.Input{Invalid: invalid})
	now := w.cfg.Now()
	rec := deadletter.Record{
		Event:           m.Data(),
		WaybillID:       pathupdate.WaybillFromSubject(m.Subject()),
		Reason:          d.Reason,
		ErrMsg:          invalid.Error(),
		OriginalSubject: m.Subject(),
		OriginalSeq:     meta.Sequence.Stream,
		FirstAttempt:    now,
		LastAttempt:     now,
		FailedAt:        now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.dl.Append(ctx, rec); err != nil {
		w.log.Error().Err(err).Uint64("seq", rec.OriginalSeq).Msg("unpartitioned message: dead-letter write failed; it comes back after AckWait")
		return
	}
	w.log.Warn().Str("subject", m.Subject()).Uint64("seq", rec.OriginalSeq).Str("reason", d.Reason).
		Msg("dead-lettered a message published to a wildcard subject")
	if err := m.DoubleAck(ctx); err != nil {
		// Stored, not acked: it comes back, and the dead letter's
		// Nats-Msg-Id makes its second write a duplicate.
		w.log.Warn().Err(err).Uint64("seq", rec.OriginalSeq).Msg("unpartitioned message: ack not confirmed")
		return
	}
	w.stats.deadLettered(d.Reason)
	w.cfg.Observer.Settled(Settlement{Reason: d.Reason, Published: meta.Timestamp, At: w.cfg.Now()})
}
