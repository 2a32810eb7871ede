package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run of the harness: what bench/results/latest.json holds.
type Report struct {
	Started  time.Time     `json:"started"`
	Took     Seconds       `json:"took_seconds"`
	Machine  Machine       `json:"machine"`
	Options  ReportOptions `json:"options"`
	Results  []Result      `json:"results"`
	Failures []string      `json:"failures,omitempty"` // scenarios that could not be measured
}

// ReportOptions are the sizes a run used.
type ReportOptions struct {
	Quick         bool    `json:"quick"`
	Reps          int     `json:"reps"`
	PublishEvents int     `json:"publish_events"`
	BacklogEvents int     `json:"backlog_events"`
	Waybills      int     `json:"waybills"`
	LatencyEvents int     `json:"latency_events"`
	LatencyMS     float64 `json:"latency_ms"`
	Concurrency   int     `json:"concurrency"`
	MaxInFlight   int     `json:"max_in_flight"`
	Partitions    int     `json:"partitions"`
	E2ERate       int     `json:"e2e_rate"`
	E2ESeconds    float64 `json:"e2e_seconds"`
	MemoryEvents  int     `json:"memory_events"`
	Seed          uint64  `json:"seed"`
}

// Machine is where a run happened.
type Machine struct {
	NumCPU     int     `json:"num_cpu"`
	CPUModel   string  `json:"cpu_model"`
	GoVersion  string  `json:"go_version"`
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	LoadBefore float64 `json:"load_avg_1m_before"` // a load above NumCPU means the machine was shared
	LoadAfter  float64 `json:"load_avg_1m_after"`
}

// Seconds is a duration written as seconds in JSON.
type Seconds float64

// Result is one scenario's measurement next to its reference.
type Result struct {
	ID        int     `json:"id"`
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Ours      float64 `json:"ours"`
	Reference float64 `json:"reference"`
	RefName   string  `json:"reference_name"`
	// Ratio is Ours/Reference: for throughput higher is better; for
	// latency and memory (RatioLowerIsBetter) lower is better.
	Ratio              float64 `json:"ratio"`
	RatioLowerIsBetter bool    `json:"ratio_lower_is_better,omitempty"`
	Target             string  `json:"target"`
	// Met is nil when the issue sets no target for the scenario.
	Met     *bool          `json:"met,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func met(ok bool) *bool { return &ok }

func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, LoadBefore: loadAvg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg is the 1-minute load average, 0 where /proc has none.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// WriteJSON writes r indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as a plain-text table (also valid Markdown when
// markdown is set), one row per scenario, then the details.
func (r *Report) WriteTable(w io.Writer, markdown bool) error {
	bw := bufio.NewWriter(w)
	m := r.Machine
	fmt.Fprintf(bw, "pathupdate benchmarks, %s, %d CPUs (%s), %s %s/%s, load %.1f before / %.1f after, took %.0fs%s\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), m.NumCPU, m.CPUModel, m.GoVersion, m.OS, m.Arch,
		m.LoadBefore, m.LoadAfter, float64(r.Took), map[bool]string{true: ", QUICK sizes (rough)", false: ""}[r.Options.Quick])
	header := []string{"#", "scenario", "ours", "reference", "ratio", "target", "met"}
	var rows [][]string
	for _, res := range r.Results {
		verdict := "-"
		if res.Met != nil {
			verdict = map[bool]string{true: "yes", false: "NO"}[*res.Met]
		}
		rows = append(rows, []string{
			strconv.Itoa(res.ID), res.Name,
			num(res.Ours) + " " + res.Unit,
			num(res.Reference) + " " + res.Unit + " (" + res.RefName + ")",
			fmt.Sprintf("%.2f", res.Ratio), res.Target, verdict,
		})
	}
	if markdown {
		fmt.Fprintf(bw, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
		for _, row := range rows {
			fmt.Fprintf(bw, "| %s |\n", strings.Join(row, " | "))
		}
	} else {
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(bw)
	for _, res := range r.Results {
		for _, n := range res.Notes {
			fmt.Fprintf(bw, "%d. %s\n", res.ID, n)
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(bw, "FAILED: %s\n", f)
	}
	return bw.Flush()
}

// num prints a figure with a precision that suits its size.
func num(f float64) string {
	switch a := math.Abs(f); {
	case a >= 1000:
		return strconv.FormatFloat(math.Round(f), 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	default:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
}
