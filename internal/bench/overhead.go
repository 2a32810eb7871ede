package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// instantAPI is an in-process logistics.updatePath that takes every event
// at once: what is left to measure is the pipeline itself.
type instantAPI struct{}

func (instantAPI) UpdatePath(context.Context, pathupdate.Event) pathupdate.Outcome {
	return pathupdate.Outcome{Kind: pathupdate.Delivered}
}

// runOverhead is scenario 2: the worker draining a backlog through an API
// that answers at once, against raw explicit-ack consumers of the same
// backlog on the same stream layout (one consumer per partition, the
// worker's MaxAckPending, Ack on receipt). Both are timed from start until
// the work-queue stream is empty, i.e. every ack was processed.
func (r *runner) runOverhead(ctx context.Context) (Result, error) {
	o := r.opts
	plan, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: o.Waybills, Events: o.BacklogEvents, Seed: o.Seed})
	if err != nil {
		return Result{}, err
	}
	kinds := []string{"ours", "raw"}
	rates := map[string][]float64{}
	for rep := range o.Reps {
		for k := range kinds {
			kind := kinds[(k+rep)%len(kinds)]
			rate, err := r.timeDrain(ctx, kind, plan)
			if err != nil {
				return Result{}, fmt.Errorf("%s: %w", kind, err)
			}
			rates[kind] = append(rates[kind], rate)
			r.progress("2 overhead rep %d %s: %.0f events/s", rep+1, kind, rate)
		}
	}
	ours, raw := median(rates["ours"]), median(rates["raw"])
	return Result{
		ID: 2, Name: "pipeline overhead (instant API)", Unit: "ev/s",
		Ours: ours, Reference: raw, RefName: "raw explicit-ack Consume",
		Ratio: ratio(ours, raw), Target: ">= 0.50", Met: met(ratio(ours, raw) >= 0.5),
		Details: map[string]any{"events": len(plan.Items), "waybills": o.Waybills, "reps": o.Reps, "rates": rates,
			"partitions": o.Partitions, "max_ack_pending": o.MaxInFlight},
	}, nil
}

// timeDrain publishes the backlog into a fresh server (not timed), then
// drains it with kind and returns events/s.
func (r *runner) timeDrain(ctx context.Context, kind string, plan *traffic.Plan) (float64, error) {
	e, err := newEnv(ctx, r.opts)
	if err != nil {
		return 0, err
	}
	defer e.close()
	defer r.history.count(e) // before close: flushes and counts the history writer
	if err := e.publishPlan(ctx, plan); err != nil {
		return 0, err
	}
	start := time.Now()
	var stop func()
	switch kind {
	case "ours":
		w, err := e.startWorker(ctx, instantAPI{}, r.opts)
		if err != nil {
			return 0, err
		}
		stop = func() { _ = w.Stop(context.Background()) }
	default:
		ccs, err := rawConsume(ctx, e.js, r.opts.Partitions, r.opts.MaxInFlight)
		if err != nil {
			return 0, err
		}
		stop = func() {
			for _, cc := range ccs {
				cc.Stop()
			}
		}
	}
	err = e.waitEmpty(ctx)
	took := time.Since(start)
	stop()
	if err != nil {
		return 0, err
	}
	return float64(len(plan.Items)) / took.Seconds(), nil
}

// rawConsume is `nats bench js consume` on our layout: a durable
// explicit-ack pull consumer per partition, Consume with default pull
// options, Ack (not confirmed) on receipt.
func rawConsume(ctx context.Context, js jetstream.JetStream, partitions, maxAckPending int) ([]jetstream.ConsumeContext, error) {
	var ccs []jetstream.ConsumeContext
	for p := range partitions {
		cons, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{
			Durable:       fmt.Sprintf("raw-p%d", p),
			FilterSubject: pathupdate.PartitionFilter(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			MaxAckPending: maxAckPending,
		})
		if err != nil {
			return ccs, err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack() })
		if err != nil {
			return ccs, err
		}
		ccs = append(ccs, cc)
	}
	return ccs, nil
}
