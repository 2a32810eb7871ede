package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
)

// runner carries one run's options and scratch space.
type runner struct {
	opts     Options
	buildDir string         // binaries built for scenarios 6 and 7
	history  *historyCounts // records the workers' history writers wrote and dropped
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.opts.Progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Run runs the scenarios of opts (after WithDefaults) and returns the
// report. A scenario that fails is listed in Report.Failures and the rest
// still run; the error is non-nil only when nothing could start.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	for _, p := range []*string{&opts.WorkerBin, &opts.PeerBin, &opts.ModuleDir, &opts.ProfileDir, &opts.TempDir} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	buildDir, err := os.MkdirTemp(opts.TempDir, "pathupdate-bench-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(buildDir)
	r := &runner{opts: opts, buildDir: buildDir, history: &historyCounts{}}
	rep := &Report{Started: time.Now(), Machine: machine(), Options: ReportOptions{
		Quick: opts.Quick, Reps: opts.Reps, PublishEvents: opts.PublishEvents, BacklogEvents: opts.BacklogEvents,
		Waybills: opts.Waybills, LatencyEvents: opts.LatencyEvents, LatencyMS: opts.Latency.Seconds() * 1000,
		Concurrency: opts.Concurrency, MaxInFlight: opts.MaxInFlight, Partitions: opts.Partitions, E2ERate: opts.E2ERate, E2ESeconds: opts.E2EDuration.Seconds(),
		MemoryEvents: opts.MemoryEvents, Seed: opts.Seed,
	}}
	if opts.ProfileDir != "" {
		if err := os.MkdirAll(opts.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	add := func(res Result, err error, id int) {
		if err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("scenario %d: %v", id, err))
			r.progress("scenario %d FAILED: %v", id, err)
			return
		}
		rep.Results = append(rep.Results, res)
	}
	// 7 runs right after 3, whose result it compares with, so both see
	// the machine in the same state; 6, the longest, runs last.
	var ours *jobRun
	for _, id := range []int{1, 2, 3, 7, 4, 5, 8, 9, 11, 10, 12, 13, 6} {
		if !opts.runs(id) && (id != 13 || !opts.runs(14)) && (id != 1 || !opts.runs(15)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r.progress("scenario %d", id)
		stopProfile := r.profile(id)
		runtime.GC() // no garbage of the previous scenario collected on this one's time
		switch id {
		case 1:
			res, err := r.runPublish(ctx)
			if err != nil {
				add(Result{}, err, id)
			}
			for _, x := range res {
				add(x, nil, x.ID)
			}
		case 2:
			res, err := r.runOverhead(ctx)
			add(res, err, id)
		case 3:
			res, _, run, err := r.runLatencyBound(ctx)
			if err == nil {
				ours = &run
			}
			add(res, err, id)
		case 7:
			if ours == nil {
				// Run scenario 3's job for the comparison, unreported.
				p, err := r.latencyPlan(traffic.Uniform)
				if err == nil {
					var run jobRun
					if run, err = r.runJob(ctx, p); err == nil {
						ours = &run
					}
				}
				if err != nil {
					add(Result{}, fmt.Errorf("our side of the comparison: %w", err), id)
					break
				}
			}
			res, err := r.runPeer(ctx, *ours)
			add(res, err, id)
		case 4:
			res, err := r.runSkewed(ctx)
			add(res, err, id)
		case 5:
			res, err := r.runEndToEnd(ctx)
			add(res, err, id)
		case 6:
			res, err := r.runMemory(ctx)
			add(res, err, id)
		case 8:
			res, err := r.runHistoryDrain(ctx)
			add(res, err, id)
		case 9:
			res, err := r.runHistoryLatency(ctx)
			add(res, err, id)
		case 10:
			res, err := r.runTraceLookup(ctx)
			add(res, err, id)
		case 11:
			res, err := r.runTracingDrain(ctx)
			add(res, err, id)
		case 12:
			res, err := r.runManyCalls(ctx)
			add(res, err, id)
		case 13:
			res, err := r.runDeploy(ctx)
			if err != nil {
				add(Result{}, err, id)
			}
			for _, x := range res {
				add(x, nil, x.ID)
			}
		}
		stopProfile()
	}
	slices.SortFunc(rep.Results, func(a, b Result) int { return a.ID - b.ID })
	rep.Took = Seconds(time.Since(rep.Started).Seconds())
	rep.Machine.LoadAfter = loadAvg()
	return rep, nil
}

// profile starts a CPU profile of scenario id when ProfileDir is set and
// returns what stops it.
func (r *runner) profile(id int) func() {
	if r.opts.ProfileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(r.opts.ProfileDir, fmt.Sprintf("scenario%d.cpu.pprof", id)))
	if err != nil {
		r.progress("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		r.progress("profile: %v", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
