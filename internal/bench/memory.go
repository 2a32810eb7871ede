package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/sandbox"
)

// memRun is what scenario 6 saw of the worker process.
type memRun struct {
	Events     int     `json:"events"`
	PeakRSSMiB float64 `json:"peak_rss_mib"` // VmHWM
	EndRSSMiB  float64 `json:"end_rss_mib"`  // VmRSS when the stream was empty
	Seconds    float64 `json:"drain_seconds"`
	Rate       float64 `json:"events_per_s"`
}

// runMemory is scenario 6: the real `pathupdate worker` binary, as a
// child process with its default settings, drains a backlog of
// MemoryEvents events published beforehand into a JetStream server the
// harness runs, delivering to a sandbox (no latency) in the harness. The
// worker's peak RSS is VmHWM from /proc/<pid>/status.
func (r *runner) runMemory(ctx context.Context) (Result, error) {
	o := r.opts
	bin, err := r.workerBin(ctx)
	if err != nil {
		return Result{}, err
	}
	e, err := newEnv(ctx, o)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	pubStart := time.Now()
	if err := e.publishReader(ctx, traffic.LineReader(o.Waybills, o.MemoryEvents), o.MemoryEvents); err != nil {
		return Result{}, fmt.Errorf("publish the backlog: %w", err)
	}
	r.progress("6 memory: %d events published in %s", o.MemoryEvents, time.Since(pubStart).Round(time.Millisecond))
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	defer sb.Close()

	start := time.Now()
	wp, err := startWorkerProc(ctx, bin, e.dir,
		"--nats-url", e.ns.ClientURL(),
		"--api-base", sb.URL, "--appid", sandbox.DefaultAppID, "--appsecret", sandbox.DefaultAppSecret,
		"--partitions", strconv.Itoa(o.Partitions), "--max-in-flight", strconv.Itoa(o.MaxInFlight),
		"--concurrency", strconv.Itoa(o.Concurrency), "--http-addr", "off", "--log-level", "warn")
	if err != nil {
		return Result{}, err
	}
	defer wp.kill()

	run := memRun{Events: o.MemoryEvents}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	lastReset := time.Now()
	for {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-t.C:
		}
		if err := wp.early(); err != nil {
			return Result{}, err
		}
		if hwm, _, err := procMem(wp.pid()); err == nil {
			run.PeakRSSMiB = max(run.PeakRSSMiB, hwm)
		}
		// The sandbox records every call; forget them now and then so the
		// harness does not grow by a million records.
		if time.Since(lastReset) > time.Second {
			sb.Reset()
			lastReset = time.Now()
		}
		left, err := e.streamMsgs(ctx)
		if err != nil {
			return Result{}, err
		}
		if left == 0 {
			break
		}
	}
	took := time.Since(start)
	hwm, rss, err := procMem(wp.pid())
	if err != nil {
		return Result{}, err
	}
	run.PeakRSSMiB, run.EndRSSMiB = max(run.PeakRSSMiB, hwm), rss
	run.Seconds, run.Rate = took.Seconds(), float64(o.MemoryEvents)/took.Seconds()
	if err := wp.stop(); err != nil {
		return Result{}, err
	}
	r.progress("6 memory: %+v", run)
	return Result{
		ID: 6, Name: fmt.Sprintf("peak RSS draining %d", o.MemoryEvents), Unit: "MiB",
		Ours: run.PeakRSSMiB, Reference: MemoryBudgetMiB, RefName: "budget",
		Ratio: run.PeakRSSMiB / MemoryBudgetMiB, RatioLowerIsBetter: true, Target: "<= 1.00 (100 MiB)",
		Met:     met(run.PeakRSSMiB <= MemoryBudgetMiB),
		Details: map[string]any{"run": run, "binary": bin},
		Notes: []string{fmt.Sprintf("memory: `pathupdate worker` (%d partitions x max-in-flight %d, concurrency %d) drained %d events in %.1fs (%.0f ev/s, sandbox without latency); VmHWM %.1f MiB, VmRSS at the end %.1f MiB",
			o.Partitions, o.MaxInFlight, o.Concurrency, o.MemoryEvents, run.Seconds, run.Rate, run.PeakRSSMiB, run.EndRSSMiB)},
	}, nil
}

// procMem reads VmHWM and VmRSS of pid in MiB.
func procMem(pid int) (hwm, rss float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %w", k, v, err)
		}
		if k == "VmHWM" {
			hwm = kb / 1024
		} else {
			rss = kb / 1024
		}
	}
	return hwm, rss, sc.Err()
}

// workerBin returns Options.WorkerBin, or builds cmd/pathupdate.
func (r *runner) workerBin(ctx context.Context) (string, error) {
	if r.opts.WorkerBin != "" {
		return r.opts.WorkerBin, nil
	}
	out := filepath.Join(r.buildDir, "pathupdate")
	if err := goBuild(ctx, r.opts.ModuleDir, out, "./cmd/pathupdate"); err != nil {
		return "", err
	}
	r.opts.WorkerBin = out
	return out, nil
}

// goBuild runs `go build -o out pkg` in dir.
func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// tailBuffer keeps the last 8 KiB written to it: a child's stderr.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = bytes.Clone(t.b[len(t.b)-8<<10:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
