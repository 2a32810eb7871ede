package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// Sizes of a full run (`make bench`): within about 10 minutes on 2 cores.
const (
	RepsDefault          = 5
	PublishEventsDefault = 200_000
	BacklogEventsDefault = 200_000
	WaybillsDefault      = 10_000
	LatencyEventsDefault = 50_000
	TraceWaybillsDefault = 1_000_000
	LatencyDefault       = 20 * time.Millisecond
	E2ERateDefault       = 1000
	E2EDurationDefault   = 20 * time.Second
	MemoryEventsDefault  = 1_000_000
	// MemoryBudgetMiB is the ceiling for scenario 6.
	MemoryBudgetMiB = 100
)

// Quick returns the sizes of `make bench-quick`: every scenario, well
// under a minute, for a smoke run; its ratios are rough.
func Quick() Options {
	return Options{
		Quick:         true,
		Reps:          1,
		PublishEvents: 20_000,
		BacklogEvents: 20_000,
		Waybills:      1_000,
		LatencyEvents: 4_000,
		E2ERate:       500,
		E2EDuration:   3 * time.Second,
		MemoryEvents:  20_000,
		TraceWaybills: 50_000,
	}
}

// Options sets up a run. Zero fields take the full run's sizes.
type Options struct {
	Quick         bool          // recorded in the report
	Reps          int           // repetitions of scenarios 1 and 2 (median taken); default RepsDefault
	PublishEvents int           // scenario 1; default PublishEventsDefault
	BacklogEvents int           // scenario 2; default BacklogEventsDefault
	Waybills      int           // scenarios 2-5 and 7; default WaybillsDefault
	LatencyEvents int           // scenarios 3, 4 and 7; default LatencyEventsDefault
	Latency       time.Duration // the sandbox's latency in 3, 4, 5 and 7; default LatencyDefault
	Concurrency   int           // the worker's (and the peer's subscribers); default worker.ConcurrencyDefault
	MaxInFlight   int           // the worker's (and the raw consumers' MaxAckPending); default worker.MaxInFlightDefault
	Partitions    int           // of the trace stream; default pathupdate.DefaultPartitions
	E2ERate       int           // scenario 5: events offered per second; default E2ERateDefault
	E2EDuration   time.Duration // scenario 5: how long the load is offered; default E2EDurationDefault
	MemoryEvents  int           // scenario 6: the backlog; default MemoryEventsDefault
	Seed          uint64        // traffic; default 1
	// History makes the workers write delivery history (scenarios 8 and 9
	// turn it on and off themselves; the others run without it).
	History bool
	// Tracing gives the workers an OTLP tracer provider (scenario 11 turns
	// it on and off itself; the others run without it).
	Tracing bool
	spans   *spanCounts // scenario 11's collector counts
	// TraceWaybills is scenario 10's count of other waybills with history
	// around the one looked up; default TraceWaybillsDefault.
	TraceWaybills int

	// WorkerBin is the `pathupdate` binary scenario 6 runs; empty: built
	// from ModuleDir with `go build`.
	WorkerBin string
	// PeerBin is the bench/peer binary scenario 7 runs; empty: built from
	// ModuleDir/bench/peer with `go build`.
	PeerBin string
	// ModuleDir is the root of the pathupdate module, for the builds.
	// Default ".".
	ModuleDir string
	// Scenarios to run, by number; default all.
	Scenarios []int
	// ProfileDir, when set, receives a CPU profile of the harness process
	// (NATS server, worker and sandbox included) per scenario.
	ProfileDir string
	// TempDir holds the JetStream stores; default the system's.
	TempDir string
	// Progress receives one line per step; default none.
	Progress io.Writer
}

// WithDefaults returns a copy of o with every zero field filled.
func (o Options) WithDefaults() Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Reps, RepsDefault)
	def(&o.PublishEvents, PublishEventsDefault)
	def(&o.BacklogEvents, BacklogEventsDefault)
	def(&o.Waybills, WaybillsDefault)
	def(&o.LatencyEvents, LatencyEventsDefault)
	def(&o.TraceWaybills, TraceWaybillsDefault)
	def(&o.Concurrency, worker.ConcurrencyDefault)
	def(&o.MaxInFlight, worker.MaxInFlightDefault)
	def(&o.Partitions, pathupdate.DefaultPartitions)
	def(&o.E2ERate, E2ERateDefault)
	def(&o.MemoryEvents, MemoryEventsDefault)
	if o.Latency == 0 {
		o.Latency = LatencyDefault
	}
	if o.E2EDuration == 0 {
		o.E2EDuration = E2EDurationDefault
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.ModuleDir == "" {
		o.ModuleDir = "."
	}
	if len(o.Scenarios) == 0 {
		for s := range LastScenario {
			o.Scenarios = append(o.Scenarios, s+1)
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	for _, s := range o.Scenarios {
		if s < 1 || s > LastScenario {
			return fmt.Errorf("bench: scenario %d: use 1 to %d", s, LastScenario)
		}
	}
	switch {
	case o.Reps < 1:
		return fmt.Errorf("bench: Reps %d: use at least 1", o.Reps)
	case o.PublishEvents < 1 || o.BacklogEvents < 1 || o.LatencyEvents < 1 || o.MemoryEvents < 1:
		return errors.New("bench: event counts must be positive")
	case o.Waybills < 1:
		return fmt.Errorf("bench: Waybills %d: use at least 1", o.Waybills)
	case o.Latency <= 0:
		return fmt.Errorf("bench: Latency %s: use a positive duration", o.Latency)
	case o.Concurrency < 1:
		return fmt.Errorf("bench: Concurrency %d: use at least 1", o.Concurrency)
	case o.MaxInFlight < 1:
		return fmt.Errorf("bench: MaxInFlight %d: use at least 1", o.MaxInFlight)
	case o.Partitions < 1 || o.Partitions > pathupdate.MaxPartitions:
		return fmt.Errorf("bench: Partitions %d: use 1 to %d", o.Partitions, pathupdate.MaxPartitions)
	case o.E2ERate < 1 || o.E2EDuration <= 0:
		return errors.New("bench: E2ERate and E2EDuration must be positive")
	}
	return nil
}

func (o Options) runs(s int) bool { return slices.Contains(o.Scenarios, s) }

// LastScenario is the highest scenario number. 13 and 14 come from one
// run, and 1 and 15: either runs it and both are reported.
const LastScenario = 15
