package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// rawMsg is one event as a raw publisher sends it: the same bytes the
// product's publisher sends, to the same subject.
type rawMsg struct {
	subject string
	data    []byte
	id      string
}

// publishVariant is one way of publishing the same events.
type publishVariant struct {
	name string
	run  func(ctx context.Context, e *env) error
}

// runPublish is scenario 1: Publisher.PublishLines (read a line, decode,
// validate, content id, async publish with at most MaxPending in flight,
// settle in input order) against raw jetstream PublishAsync of the same
// bytes, each into a fresh server and stream, repeated Reps times in
// rotating order; the medians are compared.
func (r *runner) runPublish(ctx context.Context) (Result, error) {
	o := r.opts
	plan, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: o.Waybills, Events: o.PublishEvents, Seed: o.Seed})
	if err != nil {
		return Result{}, err
	}
	lines := plan.Lines()
	msgs := make([]rawMsg, len(plan.Items))
	for i := range plan.Items {
		ev := plan.Event(i)
		msgs[i] = rawMsg{subject: pathupdate.TraceSubject(ev.WaybillID), data: ev.Encode(), id: ev.ID()}
	}
	n := len(msgs)
	variants := []publishVariant{
		{"ours", func(ctx context.Context, e *env) error {
			return e.publishReader(ctx, bytes.NewReader(lines), n)
		}},
		{"raw", func(ctx context.Context, e *env) error {
			return rawPublish(ctx, e.js, msgs, false)
		}},
		{"raw_same_headers", func(ctx context.Context, e *env) error {
			return rawPublish(ctx, e.js, msgs, true)
		}},
	}
	rates := map[string][]float64{}
	for rep := range o.Reps {
		for k := range variants {
			v := variants[(k+rep)%len(variants)] // rotate: no variant always runs first
			rate, err := r.timePublish(ctx, v, n)
			if err != nil {
				return Result{}, fmt.Errorf("%s: %w", v.name, err)
			}
			rates[v.name] = append(rates[v.name], rate)
			r.progress("1 publish rep %d %s: %.0f events/s", rep+1, v.name, rate)
		}
	}
	details := map[string]any{"events": n, "reps": o.Reps, "rates": rates, "bytes_per_event": float64(len(lines)) / float64(n)}
	ours, raw, rawHdr := median(rates["ours"]), median(rates["raw"]), median(rates["raw_same_headers"])
	details["raw_same_headers_events_per_s"] = rawHdr
	details["ratio_vs_raw_same_headers"] = ratio(ours, rawHdr)
	res := Result{
		ID: 1, Name: "publish (PublishLines)", Unit: "ev/s",
		Ours: ours, Reference: raw, RefName: "raw PublishAsync",
		Ratio: ratio(ours, raw), Target: ">= 0.80", Met: met(ratio(ours, raw) >= 0.8),
		Details: details,
		Notes: []string{fmt.Sprintf("publish: raw PublishAsync with the same Nats-Msg-Id and expected-stream headers (the server's dedup work) did %.0f ev/s; ours is %.2f of that",
			rawHdr, ratio(ours, rawHdr))},
	}
	return res, nil
}

// timePublish publishes into a fresh server and returns events/s, after
// checking the stream stored every event.
func (r *runner) timePublish(ctx context.Context, v publishVariant, n int) (float64, error) {
	e, err := newEnv(ctx, r.opts)
	if err != nil {
		return 0, err
	}
	defer e.close()
	start := time.Now()
	if err := v.run(ctx, e); err != nil {
		return 0, err
	}
	took := time.Since(start)
	got, err := e.streamMsgs(ctx)
	if err != nil {
		return 0, err
	}
	if got != uint64(n) {
		return 0, fmt.Errorf("stream holds %d of %d events", got, n)
	}
	return float64(n) / took.Seconds(), nil
}

// rawPublish is what `nats bench js pub --async` does: publish everything
// asynchronously (the handle's default limit of pending acks), then wait
// for every PubAck. With headers it also sends the two headers the
// product's publisher sends (precomputed here), so the server does the
// same deduplication work.
func rawPublish(ctx context.Context, js jetstream.JetStream, msgs []rawMsg, headers bool) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		for {
			var f jetstream.PubAckFuture
			var err error
			if headers {
				f, err = js.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.data},
					jetstream.WithMsgID(m.id), jetstream.WithExpectStream(pathupdate.TraceStream))
			} else {
				f, err = js.PublishAsync(m.subject, m.data)
			}
			if err == nil {
				futures = append(futures, f)
				break
			}
			// A stall longer than the handle's wait on a busy machine:
			// try again, as a producer would.
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return err
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, f := range futures {
		select {
		case err := <-f.Err():
			return err
		default:
		}
	}
	return nil
}
