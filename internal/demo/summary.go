package demo

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// Summary is what a demo run saw, from the sandbox's record, the worker's
// counters and the dead-letter stream.
type Summary struct {
	Published        int
	Calls            int            // path/update calls the sandbox received
	Delivered        int            // distinct events the sandbox accepted
	Duplicates       int            // accepted again after a first acceptance
	Retries          uint64         // failed calls the worker retried
	DeadLetters      map[string]int // by "reason" or "reason/errcode", read from the stream
	GoodWaybills     int            // waybills whose every event must arrive
	InOrder          int            // of those, how many arrived complete and in order
	OutOfOrder       []string       // waybills whose trace arrived out of order or incomplete
	UnexpectedAccept int            // events the sandbox accepted that it should not have
	Took             time.Duration
	Worker           worker.Stats
}

func summarize(traces []trace, sb *sandbox.Sandbox, ws worker.Stats) Summary {
	s := Summary{Worker: ws, Retries: ws.Retries}
	for _, tr := range traces {
		calls := sb.Calls(tr.waybill)
		s.Calls += len(calls)
		got := sb.Delivered(tr.waybill)
		if tr.kind != kindGood {
			s.UnexpectedAccept += len(got)
			continue
		}
		s.GoodWaybills++
		idx, ok := positions(tr, got)
		distinct := 0
		for i, p := range idx {
			if i > 0 && p == idx[i-1] {
				s.Duplicates++
				continue
			}
			distinct++
		}
		s.Delivered += distinct
		if ok && distinct == len(tr.events) {
			s.InOrder++
		} else {
			s.OutOfOrder = append(s.OutOfOrder, tr.waybill)
		}
	}
	return s
}

// positions maps each accepted call to the index of the event it carried
// and reports whether the indexes never go back (at-least-once allows a
// repeat of the event just delivered, never an older one after a newer).
func positions(tr trace, got []sandbox.Call) ([]int, bool) {
	ok := true
	idx := make([]int, 0, len(got))
	for _, c := range got {
		p := slices.IndexFunc(tr.events, func(e pathupdate.Event) bool {
			return e.ActionTime == c.ActionTime && e.ActionMsg == c.ActionMsg && int(e.ActionType) == c.ActionType
		})
		if p < 0 || (len(idx) > 0 && p < idx[len(idx)-1]) {
			ok = false
		}
		idx = append(idx, p)
	}
	return idx, ok
}

// Write prints the summary for a person.
func (s Summary) Write(out io.Writer, cfg Config) {
	fmt.Fprintf(out, "pathupdate demo: %d waybills x %d events, %.0f%% of calls answered -1, %d malformed messages\n",
		cfg.Waybills, cfg.EventsPerWaybill, cfg.SystemErrorRate*100, len(garbage))
	fmt.Fprintf(out, "  published        %d messages to logistics.trace.<waybill>\n", s.Published)
	fmt.Fprintf(out, "  API calls        %d (%d retried after -1)\n", s.Calls, s.Retries)
	fmt.Fprintf(out, "  delivered        %d events (%d duplicate deliveries)\n", s.Delivered, s.Duplicates)
	keys := make([]string, 0, len(s.DeadLetters))
	total := 0
	for k, n := range s.DeadLetters {
		keys = append(keys, k)
		total += n
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.DeadLetters[k]))
	}
	fmt.Fprintf(out, "  dead-lettered    %d (%s)\n", total, strings.Join(parts, ", "))
	if len(s.OutOfOrder) == 0 {
		fmt.Fprintf(out, "  order            every trace arrived complete and in order (%d/%d waybills)\n", s.InOrder, s.GoodWaybills)
	} else {
		fmt.Fprintf(out, "  order            %d/%d waybills complete and in order; NOT: %s\n", s.InOrder, s.GoodWaybills,
			strings.Join(s.OutOfOrder[:min(10, len(s.OutOfOrder))], " "))
	}
	fmt.Fprintf(out, "  took             %s\n", s.Took.Round(10*time.Millisecond))
	if !cfg.KeepRunning {
		fmt.Fprintf(out, "Run with --keep-running to try `pathupdate status`, `pathupdate trace WAYBILL` and `pathupdate deadletter list|replay` on what it left.\n")
	}
}

// Check returns an error naming what the product promised and did not do.
func (s Summary) Check(traces []trace) error {
	var problems []string
	if len(s.OutOfOrder) > 0 {
		problems = append(problems, fmt.Sprintf("%d waybills incomplete or out of order", len(s.OutOfOrder)))
	}
	if s.UnexpectedAccept > 0 {
		problems = append(problems, fmt.Sprintf("%d events accepted that WeChat should have rejected", s.UnexpectedAccept))
	}
	wantRejected := 0
	for _, tr := range traces {
		if tr.kind != kindGood {
			wantRejected += len(tr.events)
		}
	}
	gotRejected := s.DeadLetters["rejected/40199"] + s.DeadLetters["rejected/9300507"]
	if gotRejected != wantRejected {
		problems = append(problems, fmt.Sprintf("%d rejected dead letters, want %d", gotRejected, wantRejected))
	}
	if s.DeadLetters["invalid_event"] != len(garbage) {
		problems = append(problems, fmt.Sprintf("%d invalid_event dead letters, want %d", s.DeadLetters["invalid_event"], len(garbage)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo: %s", strings.Join(problems, "; "))
	}
	return nil
}
