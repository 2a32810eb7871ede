package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pathupdate/pathupdate/pause"
)

// Write prints r for a person.
func (r Report) Write(out io.Writer) error {
	writePause(out, r.Pause)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "STREAM\tREPLICAS\tMESSAGES\tBYTES\tLEADER\n")
	streams := []StreamReport{r.Trace, r.DeadLetter}
	if r.History != nil {
		streams = append(streams, r.History.StreamReport)
	}
	for _, s := range streams {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", s.Name, s.Replicas, s.Messages, s.Bytes, s.Leader)
	}
	fmt.Fprintf(tw, "\nWORKER\tHOST\tPID\tPARTITIONS\tHELD\tBREAKER\tLAST BEAT\n")
	if len(r.Workers) == 0 {
		fmt.Fprintf(tw, "(none alive)\t\t\t\t\t\t\n")
	}
	for _, w := range r.Workers {
		parts := make([]string, len(w.Partitions))
		for i, p := range w.Partitions {
			parts[i] = fmt.Sprint(p)
		}
		breaker := w.Breaker
		if breaker == "" {
			breaker = "-" // a worker of an older version
		}
		if w.Paused != "" {
			breaker += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s ago\n", w.ID, w.Host, w.PID, strings.Join(parts, ","), w.Held,
			breaker, r.At.Sub(w.Beat).Round(100*time.Millisecond))
	}
	for _, w := range r.Workers {
		if w.Paused != "" {
			fmt.Fprintf(tw, "  %s paused: %s\n", w.ID, w.Paused)
		}
	}
	fmt.Fprintf(tw, "\nPARTITION\tCONSUMER\tPENDING\tUNACKED\tHOLDER\n")
	for _, p := range r.Partitions {
		holder := p.Holder
		if holder == "" {
			holder = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\n", p.Partition, p.Consumer, p.Pending, p.AckPending, holder)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var reasons []string
	for _, k := range sortedKeys(r.DeadLetters.ByReason) {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, r.DeadLetters.ByReason[k]))
	}
	var codes []string
	for _, k := range sortedKeys(r.DeadLetters.ByErrCode) {
		codes = append(codes, fmt.Sprintf("%d: %d", k, r.DeadLetters.ByErrCode[k]))
	}
	_, err := fmt.Fprintf(out, "\nDead letters: %d", r.DeadLetters.Total)
	if r.DeadLetters.Total > 0 {
		_, err = fmt.Fprintf(out, " (by reason: %s; by errcode: %s)", strings.Join(reasons, ", "), strings.Join(codes, ", "))
	}
	fmt.Fprintln(out)
	switch {
	case r.History == nil:
		fmt.Fprintln(out, "History: off (no stream LOGISTICS_HISTORY): `pathupdate trace` has only the trace and dead-letter streams")
	case r.History.Oldest.IsZero():
		fmt.Fprintf(out, "History: empty; records kept %s\n", ageText(r.History.MaxAge))
	default:
		fmt.Fprintf(out, "History: %d records since %s; kept %s\n", r.History.Messages,
			r.History.Oldest.UTC().Format(time.RFC3339), ageText(r.History.MaxAge))
	}
	writeQuota(out, r.Quota, r.At)
	if r.Unpartitioned > 0 {
		_, err = fmt.Fprintf(out, "Unpartitioned: %d %s published to a wildcard subject (logistics.trace.* or logistics.trace.>): no partition delivers %s; a running worker dead-letters %s as invalid_event\n",
			r.Unpartitioned, plural(r.Unpartitioned, "message", "messages"), plural(r.Unpartitioned, "it", "them"), plural(r.Unpartitioned, "it", "them"))
	}
	return err
}

// writePause says an operator's pause first, as it explains everything
// below it: backlogs that grow and workers that deliver nothing.
func writePause(out io.Writer, st pause.State) {
	if st.Paused {
		fmt.Fprintf(out, "Delivery %s (by an operator since %s): events wait in JetStream; `pathupdate resume` lifts it\n",
			st, st.Since.UTC().Format(time.RFC3339))
		if n := st.Missing(); n > 0 {
			fmt.Fprintf(out, "  %d of its consumers do not exist yet: a worker creates them paused\n", n)
		}
	}
	for _, c := range st.Disagreeing() {
		fmt.Fprintf(out, "  consumer %s is %s, unlike the recorded pause (%s): running workers put it right within seconds\n", c.Name, c, st)
	}
	if st.Paused || len(st.Disagreeing()) > 0 {
		fmt.Fprintln(out)
	}
}

func ageText(d time.Duration) string {
	if d <= 0 {
		return "until the stream's size limit"
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
