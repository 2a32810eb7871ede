package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// Targets of scenarios 13 and 14 (issue 16).
const (
	StartDelayTarget  = time.Second
	CPUPerEventTarget = 60 * time.Microsecond
)

// deployRun is what scenarios 13 and 14 saw of the second worker process.
type deployRun struct {
	Events           int     `json:"events"`
	StartDelay       float64 `json:"start_delay_seconds"` // its start to its first delivery
	Drain            float64 `json:"drain_seconds"`       // its first delivery to every event delivered
	Rate             float64 `json:"events_per_s"`        // over the drain
	CPUAtFirst       float64 `json:"cpu_seconds_at_first_delivery"`
	CPUDrain         float64 `json:"cpu_seconds_drain"` // user + system over the drain
	CPUPerEventMicro float64 `json:"cpu_us_per_event"`
	Order            traffic.Order
}

// runDeploy is scenarios 13 and 14, a deploy of the real `pathupdate
// worker` binary with its default settings (history on) against a
// JetStream server the harness runs and a sandbox answering at once: a
// first worker starts, takes its partitions and is stopped with SIGTERM
// having received nothing; then scenario 3's events are published and a
// second worker starts. 13 is the time from its start to its first
// delivery; 14 its CPU time (/proc/<pid>/stat) over the drain that
// follows, per delivered event.
func (r *runner) runDeploy(ctx context.Context) ([]Result, error) {
	o := r.opts
	bin, err := r.workerBin(ctx)
	if err != nil {
		return nil, err
	}
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	defer sb.Close()
	args := []string{"--nats-url", e.ns.ClientURL(),
		"--api-base", sb.URL, "--appid", sandbox.DefaultAppID, "--appsecret", sandbox.DefaultAppSecret,
		"--partitions", strconv.Itoa(o.Partitions), "--http-addr", "off", "--log-level", "warn"}

	first, err := startWorkerProc(ctx, bin, e.dir, args...)
	if err != nil {
		return nil, err
	}
	defer first.kill()
	if err := e.waitPulling(ctx, first, o.Partitions); err != nil {
		return nil, err
	}
	if err := first.stop(); err != nil {
		return nil, fmt.Errorf("first worker: %w", err)
	}
	p, err := r.latencyPlan(traffic.Uniform)
	if err != nil {
		return nil, err
	}
	if err := e.publishPlan(ctx, p); err != nil {
		return nil, err
	}

	start := time.Now()
	second, err := startWorkerProc(ctx, bin, e.dir, args...)
	if err != nil {
		return nil, err
	}
	defer second.kill()
	run := deployRun{Events: len(p.Items)}
	m, err := measureDrain(ctx, second, sb, p)
	if err != nil {
		return nil, err
	}
	run.StartDelay, run.Drain = m.firstAt.Sub(start).Seconds(), m.drain.Seconds()
	run.Rate = float64(run.Events) / run.Drain
	run.CPUAtFirst, run.CPUDrain = m.cpuFirst.Seconds(), m.cpuDrain.Seconds()
	run.CPUPerEventMicro = 1e6 * run.CPUDrain / float64(run.Events)
	run.Order = p.Check(sb)
	if err := second.stop(); err != nil {
		return nil, fmt.Errorf("second worker: %w", err)
	}
	r.progress("13/14 deploy: %+v", run)
	floor, err := r.floorCPU(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("scenario 14's floor: %w", err)
	}
	r.progress("14 floor: %+v", floor)
	orderOK := run.Order.Violations == 0 && run.Order.Missing == 0
	details := map[string]any{"run": run, "binary": bin, "floor": floor}
	return []Result{{
		ID: 13, Name: "first delivery after a deploy (idle worker stopped)", Unit: "s",
		Ours: run.StartDelay, Reference: StartDelayTarget.Seconds(), RefName: "target",
		Ratio: run.StartDelay / StartDelayTarget.Seconds(), RatioLowerIsBetter: true, Target: "<= 1.00 (1 s)",
		Met: met(run.StartDelay <= StartDelayTarget.Seconds()), Details: details,
		Notes: []string{fmt.Sprintf("deploy: a worker took its %d partitions and was stopped with SIGTERM having received nothing; %d events were published; the next worker's first delivery came %.2fs after its start",
			o.Partitions, run.Events, run.StartDelay)},
	}, {
		ID: 14, Name: "worker CPU per delivered event (instant API, history on)", Unit: "us",
		Ours: run.CPUPerEventMicro, Reference: float64(CPUPerEventTarget.Microseconds()), RefName: "target",
		Ratio: run.CPUPerEventMicro / float64(CPUPerEventTarget.Microseconds()), RatioLowerIsBetter: true, Target: "<= 1.00 (60 us), 0 violations",
		Met: met(run.CPUPerEventMicro <= float64(CPUPerEventTarget.Microseconds()) && orderOK), Details: details,
		Notes: []string{fmt.Sprintf("cpu: `pathupdate worker` used %.2f CPU-s (user + system, /proc) draining %d events in %.2fs (%.0f ev/s) after its first delivery, %.2f CPU-s before it (start-up); %s",
			run.CPUDrain, run.Events, run.Drain, run.Rate, run.CPUAtFirst, orderNote(run.Order)),
			fmt.Sprintf("floor: bench/cmd/pathupdate-floor (raw consume, decode, the same client's call, a core-published history record, one ack; no order) used %.1f us an event on the same events (%.2f CPU-s, %.0f ev/s); the target is %.2f of that floor, ours %.2f of it",
				floor.CPUPerEventMicro, floor.CPUDrain, floor.Rate, float64(CPUPerEventTarget.Microseconds())/floor.CPUPerEventMicro, run.CPUPerEventMicro/floor.CPUPerEventMicro)},
	}}, nil
}

// waitPulling waits until every partition consumer has a pull request of
// wp waiting: the worker took its partitions and is idle.
func (e *env) waitPulling(ctx context.Context, wp *workerProc, partitions int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(time.Minute)
	for {
		pulling := 0
		for n := range partitions {
			c, err := e.js.Consumer(ctx, pathupdate.TraceStream, fmt.Sprintf("%s-p%d", worker.ConsumerDefault, n))
			if err != nil {
				break
			}
			if info, err := c.Info(ctx); err == nil && info.NumWaiting > 0 {
				pulling++
			}
		}
		if pulling == partitions {
			return nil
		}
		if err := wp.early(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the first worker pulled from %d of %d partitions within a minute", pulling, partitions)
		case <-t.C:
		}
	}
}

// drainMeasure is what measureDrain saw of a process draining a plan.
type drainMeasure struct {
	firstAt            time.Time     // the plan's first arrival at the sandbox
	drain              time.Duration // from it to every event delivered
	cpuFirst, cpuDrain time.Duration // the process's CPU time before it, and over the drain
}

// measureDrain waits for proc's first delivery to sb, reading its CPU
// time until then, and then for every event of p, and reads it again.
func measureDrain(ctx context.Context, proc *workerProc, sb *sandbox.Server, p *traffic.Plan) (drainMeasure, error) {
	var m drainMeasure
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for sb.Stats().Delivered == 0 {
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-t.C:
		}
		if err := proc.early(); err != nil {
			return m, err
		}
		var err error
		if m.cpuFirst, err = procCPU(proc.pid()); err != nil {
			return m, err
		}
	}
	done, err := waitDelivered(ctx, sb, p)
	if err != nil {
		return m, err
	}
	cpuEnd, err := procCPU(proc.pid())
	if err != nil {
		return m, err
	}
	m.firstAt = p.FirstArrival(sb)
	m.drain, m.cpuDrain = done.Sub(m.firstAt), cpuEnd-m.cpuFirst
	return m, nil
}

// floorRun is what scenario 14's reference process did.
type floorRun struct {
	CPUDrain         float64 `json:"cpu_seconds_drain"`
	Rate             float64 `json:"events_per_s"`
	CPUPerEventMicro float64 `json:"cpu_us_per_event"`
}

// floorCPU runs bench/cmd/pathupdate-floor over p's events on a fresh
// server and sandbox (a work-queue stream takes no second set of
// consumers beside the worker's) and returns its CPU time per event over
// the drain, measured as the worker's is.
func (r *runner) floorCPU(ctx context.Context, p *traffic.Plan) (floorRun, error) {
	o := r.opts
	bin := filepath.Join(r.buildDir, "pathupdate-floor")
	if err := goBuild(ctx, o.ModuleDir, bin, "./bench/cmd/pathupdate-floor"); err != nil {
		return floorRun{}, err
	}
	e, err := newEnv(ctx, o)
	if err != nil {
		return floorRun{}, err
	}
	defer e.close()
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	defer sb.Close()
	if err := e.publishPlan(ctx, p); err != nil {
		return floorRun{}, err
	}
	proc, err := startProc(ctx, bin, e.dir, []string{"WECHAT_APPSECRET=" + sandbox.DefaultAppSecret},
		"-nats-url", e.ns.ClientURL(), "-api-base", sb.URL, "-appid", sandbox.DefaultAppID,
		"-partitions", strconv.Itoa(o.Partitions), "-concurrency", strconv.Itoa(o.Concurrency), "-max-in-flight", strconv.Itoa(o.MaxInFlight))
	if err != nil {
		return floorRun{}, err
	}
	defer proc.kill()
	m, err := measureDrain(ctx, proc, sb, p)
	if err != nil {
		return floorRun{}, err
	}
	if err := proc.stop(); err != nil {
		return floorRun{}, err
	}
	return floorRun{CPUDrain: m.cpuDrain.Seconds(), Rate: float64(len(p.Items)) / m.drain.Seconds(),
		CPUPerEventMicro: 1e6 * m.cpuDrain.Seconds() / float64(len(p.Items))}, nil
}
