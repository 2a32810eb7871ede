// Command pathupdate-bench runs pathupdate's benchmark scenarios (package
// bench), prints the table and writes the report as JSON to
// <out>/latest.json and <out>/<date>.json. `make bench` and
// `make bench-quick` run it; docs/benchmarks.md explains the figures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pathupdate/pathupdate/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pathupdate-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var (
		quick       = flag.Bool("quick", false, "small sizes: every scenario in well under a minute (a smoke run; ratios are rough)")
		out         = flag.String("out", "bench/results", "folder for latest.json and the dated copy (\"\" = none)")
		scenarios   = flag.String("scenarios", "", "comma-separated scenario numbers to run (default all: 1-14; 13 and 14 come from one run)")
		workerBin   = flag.String("worker-bin", "", "pathupdate binary for scenario 6 (default: go build ./cmd/pathupdate)")
		peerBin     = flag.String("peer-bin", "", "bench/peer binary for scenario 7 (default: go build in bench/peer)")
		profileDir  = flag.String("cpuprofile-dir", "", "write a CPU profile of the harness per scenario here")
		markdown    = flag.Bool("markdown", false, "print the table as Markdown")
		reps        = flag.Int("reps", 0, "repetitions of scenarios 1 and 2 (default 5, quick 1)")
		concurrency = flag.Int("concurrency", 0, "worker concurrency and peer subscribers (default the worker's, 64)")
		memEvents   = flag.Int("memory-events", 0, "backlog of scenario 6 (default 1,000,000, quick 20,000)")
		partitions  = flag.Int("partitions", 0, "partitions of the trace stream (default the product's, 8)")
		maxInFlight = flag.Int("max-in-flight", 0, "worker max-in-flight per partition (default the worker's, 512)")
		timeout     = flag.Duration("timeout", 20*time.Minute, "give up after this long")
		from        = flag.String("from", "", "print the table of this JSON report instead of running (with -markdown for docs/benchmarks.md)")
	)
	flag.Parse()
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			return err
		}
		var rep bench.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", *from, err)
		}
		return rep.WriteTable(os.Stdout, *markdown)
	}
	opts := bench.Options{}
	if *quick {
		opts = bench.Quick()
	}
	opts.WorkerBin, opts.PeerBin, opts.ProfileDir = *workerBin, *peerBin, *profileDir
	if *reps > 0 {
		opts.Reps = *reps
	}
	if *concurrency > 0 {
		opts.Concurrency = *concurrency
	}
	if *memEvents > 0 {
		opts.MemoryEvents = *memEvents
	}
	if *partitions > 0 {
		opts.Partitions = *partitions
	}
	if *maxInFlight > 0 {
		opts.MaxInFlight = *maxInFlight
	}
	if *scenarios != "" {
		for _, s := range strings.Split(*scenarios, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("-scenarios %q: %w", *scenarios, err)
			}
			opts.Scenarios = append(opts.Scenarios, n)
		}
	}
	opts.Progress = os.Stderr
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := bench.Run(ctx, opts)
	if err != nil && rep == nil {
		return err
	}
	if werr := rep.WriteTable(os.Stdout, *markdown); werr != nil {
		return werr
	}
	if *out != "" {
		if werr := write(rep, *out); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d scenario(s) failed", len(rep.Failures))
	}
	return nil
}

// write stores the report as latest.json and as a copy named by its start
// time; a quick run writes latest-quick.json and a -quick copy, so it never
// passes for a full one.
func write(rep *bench.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name, latest := rep.Started.UTC().Format("2006-01-02T150405Z"), "latest"
	if rep.Options.Quick {
		name, latest = name+"-quick", "latest-quick"
	}
	for _, f := range []string{latest + ".json", name + ".json"} {
		fh, err := os.Create(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(fh); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", filepath.Join(dir, latest+".json"), filepath.Join(dir, name+".json"))
	return nil
}
