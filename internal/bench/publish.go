package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
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

// runPublish is scenarios 1 and 15: Publisher.PublishLines (read a
// line, decode, validate, content id, async publish with at most
// MaxPending in flight, one line of a waybill at a time) against raw
// jetstream PublishAsync of the same bytes with the same headers (1), and
// of the same events with each waybill's lines together against them
// interleaved (15); each into a fresh server and stream, repeated Reps
// times in rotating order; the medians are compared.
func (r *runner) runPublish(ctx context.Context) ([]Result, error) {
	o := r.opts
	plan, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: o.Waybills, Events: o.PublishEvents, Seed: o.Seed})
	if err != nil {
		return nil, err
	}
	lines, adjacent := plan.Lines(), plan.ByWaybill().Lines()
	msgs := planMsgs(plan)
	n := len(msgs)
	variants := []publishVariant{
		{"ours", func(ctx context.Context, e *env) error {
			return e.publishReader(ctx, bytes.NewReader(lines), n)
		}},
		{"ours_adjacent", func(ctx context.Context, e *env) error {
			return e.publishReader(ctx, bytes.NewReader(adjacent), n)
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
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			rates[v.name] = append(rates[v.name], rate)
			r.progress("1/15 publish rep %d %s: %.0f events/s", rep+1, v.name, rate)
		}
	}
	details := map[string]any{"events": n, "waybills": o.Waybills, "reps": o.Reps, "rates": rates, "bytes_per_event": float64(len(lines)) / float64(n)}
	ours, adj, raw, rawHdr := median(rates["ours"]), median(rates["ours_adjacent"]), median(rates["raw"]), median(rates["raw_same_headers"])
	details["raw_events_per_s"] = raw
	return []Result{{
		ID: 1, Name: "publish (PublishLines)", Unit: "ev/s",
		Ours: ours, Reference: rawHdr, RefName: "raw PublishAsync, same headers",
		Ratio: ratio(ours, rawHdr), Target: ">= 0.80", Met: met(ratio(ours, rawHdr) >= 0.8),
		Details: details,
		Notes: []string{fmt.Sprintf("publish: raw PublishAsync with the same Nats-Msg-Id and expected-stream headers (the server's dedup work) did %.0f ev/s, without them %.0f ev/s; ours is %.2f and %.2f of those",
			rawHdr, raw, ratio(ours, rawHdr), ratio(ours, raw))},
	}, {
		ID: 15, Name: "publish, each waybill's lines together (per-parcel export)", Unit: "ev/s",
		Ours: adj, Reference: ours, RefName: "the same events interleaved",
		Ratio: ratio(adj, ours), Target: ">= 0.50", Met: met(ratio(adj, ours) >= 0.5),
		Details: details,
		Notes: []string{fmt.Sprintf("adjacent: %d events of %d waybills with each waybill's lines together published at %.0f ev/s, interleaved %.0f ev/s (%.2f)",
			n, o.Waybills, adj, ours, ratio(adj, ours))},
	}}, nil
}

// planMsgs is the plan's events as a raw publisher sends them, in the
// plan's order.
func planMsgs(plan *traffic.Plan) []rawMsg {
	msgs := make([]rawMsg, len(plan.Items))
	for i := range plan.Items {
		ev := plan.Event(i)
		msgs[i] = rawMsg{subject: pathupdate.TraceSubject(ev.WaybillID), data: ev.Encode(), id: ev.ID()}
	}
	return msgs
}

// timePublish publishes into a fresh server and returns events/s, after
// checking the stream stored every event.
func (r *runner) timePublish(ctx context.Context, v publishVariant, n int) (float64, error) {
	e, err := newEnv(ctx, r.opts)
	if err != nil {
		return 0, err
	}
	defer e.close()
	runtime.GC() // the previous variant's garbage is not collected on this one's time
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
