package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/sandbox"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

// tiny are sizes that prove every scenario runs, in seconds. Nothing
// about speed is asserted: CI machines are shared and slow.
func tiny(t *testing.T) Options {
	return Options{
		Quick: true, Reps: 1,
		PublishEvents: 300, BacklogEvents: 300, Waybills: 40, LatencyEvents: 200,
		Latency: 2 * time.Millisecond, Concurrency: 8,
		E2ERate: 200, E2EDuration: 300 * time.Millisecond,
		MemoryEvents: 500, TraceWaybills: 2000,
		ModuleDir: filepath.Join("..", ".."),
		TempDir:   t.TempDir(),
	}
}

// TestSmoke runs scenarios 1 to 6 and 8 to 15 with tiny sizes (6, 13 and
// 14 build and run the real `pathupdate worker`) and checks that each produced a sane result
// and that ours delivered everything in order. Scenario 7 builds the peer
// module (bench/peer, watermill from the module proxy): set
// PATHUPDATE_BENCH_PEER=1 to include it.
func TestSmoke(t *testing.T) {
	opts := tiny(t)
	opts.Scenarios = []int{1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	if os.Getenv("PATHUPDATE_BENCH_PEER") == "1" {
		opts.Scenarios = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	}
	opts.Progress = testLog{t}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %v", rep.Failures)
	}
	if len(rep.Results) != len(opts.Scenarios) {
		t.Fatalf("%d results for scenarios %v", len(rep.Results), opts.Scenarios)
	}
	for i, res := range rep.Results {
		if res.ID != opts.Scenarios[i] {
			t.Errorf("result %d is scenario %d, want %d (sorted by id)", i, res.ID, opts.Scenarios[i])
		}
		if !(res.Ours > 0) || !(res.Reference > 0) || !(res.Ratio > 0) {
			t.Errorf("scenario %d: ours %v, reference %v, ratio %v: want all positive", res.ID, res.Ours, res.Reference, res.Ratio)
		}
	}
	byID := map[int]Result{}
	for _, res := range rep.Results {
		byID[res.ID] = res
	}
	for _, id := range []int{3, 4, 12} {
		run := byID[id].Details["run"].(jobRun)
		if o := run.Order; o.Missing != 0 || o.Violations != 0 || o.Delivered != opts.LatencyEvents {
			t.Errorf("scenario %d: order %+v: want every event delivered, in order", id, o)
		}
	}
	if o := byID[14].Details["run"].(deployRun).Order; o.Missing != 0 || o.Violations != 0 {
		t.Errorf("scenario 14: order %+v: want every event delivered, in order", o)
	}
	if f := byID[14].Details["floor"].(floorRun); f.CPUPerEventMicro <= 0 || f.Rate <= 0 {
		t.Errorf("scenario 14: floor %+v: want the reference process's CPU time and rate", f)
	}
	for _, id := range []int{8, 9} {
		d := byID[id].Details
		if w, dr := d["history_written"].(uint64), d["history_dropped"].(uint64); w == 0 || dr != 0 {
			t.Errorf("scenario %d: history written %d, dropped %d: want records, none dropped", id, w, dr)
		}
	}
	if d := byID[11].Details; d["spans_exported"].(int64) == 0 || d["export_requests"].(int64) == 0 {
		t.Errorf("scenario 11: %d spans exported in %d requests: want the tracing side to export", d["spans_exported"], d["export_requests"])
	}
	if n := byID[10].Details["steps_found"].(int); n < 10 {
		t.Errorf("scenario 10: the looked-up waybill has %d steps, want its 10 or more records", n)
	}

	var table, js bytes.Buffer
	if err := rep.WriteTable(&table, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 1 | publish", "| 6 | peak RSS", "QUICK"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON does not read back: %v (%d results)", err, len(back.Results))
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"scenario out of range", func(o *Options) { o.Scenarios = []int{LastScenario + 1} }, fmt.Sprintf("scenario %d", LastScenario+1)},
		{"no reps", func(o *Options) { o.Reps = -1 }, "Reps"},
		{"no concurrency", func(o *Options) { o.Concurrency = -1 }, "Concurrency"},
		{"negative latency", func(o *Options) { o.Latency = -time.Millisecond }, "Latency"},
	} {
		o := Options{}.WithDefaults()
		tt.mod(&o)
		err := o.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: err %v, want one naming %q", tt.name, err, tt.want)
		}
	}
}

// TestPlanCheck checks the order judge on a record with a reorder, a
// duplicate and a missing event.
func TestPlanCheck(t *testing.T) {
	t.Parallel()
	p, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: 2, Events: 6, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	rec := fakeRecord{
		// waybill 0: 0, 2, 1 (violation), 2 again (duplicate)
		traffic.WaybillID(0): {0, 2, 1, 2},
		// waybill 1: 0, 1 (2 missing)
		traffic.WaybillID(1): {0, 1},
	}
	got := p.Check(rec)
	want := traffic.Order{Events: 6, Delivered: 5, Missing: 1, Duplicates: 1, Violations: 1, WaybillsViolated: 1}
	if got != want {
		t.Errorf("Check = %+v, want %+v", got, want)
	}
}

func TestPlanShapes(t *testing.T) {
	t.Parallel()
	for _, shape := range []traffic.Shape{traffic.Uniform, traffic.Zipf} {
		p, err := traffic.New(traffic.Spec{Shape: shape, Waybills: 100, Events: 2000, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Every waybill's events appear in index order in the stream.
		next := make([]int, len(p.Waybills))
		for _, it := range p.Items {
			if it.Index != next[it.Waybill] {
				t.Fatalf("%s: waybill %d event %d comes when %d is next", shape, it.Waybill, it.Index, next[it.Waybill])
			}
			next[it.Waybill]++
		}
		total := 0
		for w, n := range next {
			if n != p.Counts[w] {
				t.Fatalf("%s: waybill %d has %d events in the stream, Counts says %d", shape, w, n, p.Counts[w])
			}
			total += n
		}
		if total != 2000 {
			t.Fatalf("%s: %d events, want 2000", shape, total)
		}
		if shape == traffic.Uniform && p.MaxPerWaybill() != 20 {
			t.Errorf("uniform: hottest waybill has %d events, want 20", p.MaxPerWaybill())
		}
		if shape == traffic.Zipf && p.MaxPerWaybill() < 60 { // three times the uniform share
			t.Errorf("zipf: hottest waybill has only %d of 2000 events: not skewed", p.MaxPerWaybill())
		}
		// Same seed, same plan.
		q, _ := traffic.New(p.Spec)
		if !bytes.Equal(p.Lines(), q.Lines()) {
			t.Errorf("%s: the same spec made different plans", shape)
		}
	}
}

// fakeRecord is a sandbox record given as delivered event indexes per
// waybill, in arrival order.
type fakeRecord map[string][]int

func (f fakeRecord) Delivered(waybill string) []sandbox.Call {
	var out []sandbox.Call
	for _, i := range f[waybill] {
		out = append(out, sandbox.Call{WaybillID: waybill, ActionTime: traffic.ActionTimeBase + int64(i)*traffic.ActionTimeStep, HTTPStatus: 200})
	}
	return out
}

// testLog writes the harness's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
