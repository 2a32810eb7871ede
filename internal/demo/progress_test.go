package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/demo"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

var progressLine = regexp.MustCompile(`published (\d+)/(\d+), delivered (\d+), dead-lettered (\d+), in flight (\d+)`)

// The demo is not silent until its summary: it prints its seed at once and
// reports progress while it runs, its last report the settled state.
func TestDemoReportsSeedAndProgress(t *testing.T) {
	t.Parallel()
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("in place %v", inPlace), func(t *testing.T) {
			t.Parallel()
			var out natstest.SyncBuffer
			s, err := demo.Run(context.Background(), demo.Config{Waybills: 40, EventsPerWaybill: 5, SystemErrorRate: 0.2, Seed: 11,
				Progress: &out, ProgressInPlace: inPlace, ProgressEvery: 10 * time.Millisecond}, &out)
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out.String())
			}
			text := out.String()
			if !strings.HasPrefix(text, "pathupdate demo: seed 11 (run again with --seed 11") {
				t.Errorf("the output does not start with the seed: %q", text[:min(len(text), 120)])
			}
			reports := progressLine.FindAllStringSubmatch(text, -1)
			if len(reports) < 2 {
				t.Fatalf("%d progress reports, want several:\n%s", len(reports), text)
			}
			last := reports[len(reports)-1]
			dead := 0
			for _, n := range s.DeadLetters {
				dead += n
			}
			if want := []string{fmt.Sprint(s.Published), fmt.Sprint(s.Published), fmt.Sprint(s.Delivered), fmt.Sprint(dead), "0"}; strings.Join(last[1:], " ") != strings.Join(want, " ") {
				t.Errorf("last report %q, want published %s/%s, delivered %s, dead-lettered %s, in flight %s", last[0], want[0], want[1], want[2], want[3], want[4])
			}
			summary := strings.Index(text, "pathupdate demo: 40 waybills")
			if summary < 0 {
				t.Fatalf("no summary:\n%s", text)
			}
			before := text[:summary]
			if inPlace {
				if strings.Count(before, "\r") < 2 || strings.Count(before, "\n") != 2 || !strings.HasSuffix(before, "\n") {
					t.Errorf("in place: want reports rewritten with \\r on one line, ended before the summary: %q", before)
				}
			} else if strings.Contains(before, "\r") || strings.Count(before, "\n") != len(reports)+1 {
				t.Errorf("lines: want one report a line, no \\r: %q", before)
			}
		})
	}
}

func TestDemoWithoutProgressWriterPrintsSummaryOnly(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := demo.Run(context.Background(), demo.Config{Waybills: 10, EventsPerWaybill: 3, Seed: 5}, &out); err != nil {
		t.Fatal(err)
	}
	if progressLine.MatchString(out.String()) {
		t.Errorf("progress without a Progress writer:\n%s", out.String())
	}
}
