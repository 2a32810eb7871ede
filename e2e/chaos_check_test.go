package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// What the chaos scenarios check after a run, from the sandbox's record
// and the streams, and the figures they print.

// tally is what the sandbox's record says about a set of traces.
type tally struct {
	Delivered       int // distinct expected events delivered
	Duplicates      int // deliveries of an event already delivered
	OrderViolations int // a delivery of an older event after a newer one, or one ahead of a missing one
	Unexpected      int // deliveries of an event not in the traces (a hostile one, say)
	Missing         int // expected events never delivered
	firstProblem    string
}

// count walks each waybill's delivered calls against its trace (the events
// expected to be delivered, in order; events identified by action_msg).
// At least once allows the event just delivered to arrive again; anything
// older arriving after a newer one is an order violation.
func count(sb *sandbox.Server, trs []trace) tally {
	var tl tally
	problem := func(format string, args ...any) {
		if tl.firstProblem == "" {
			tl.firstProblem = fmt.Sprintf(format, args...)
		}
	}
	for _, tr := range trs {
		if len(tr) == 0 {
			continue
		}
		pos := make(map[string]int, len(tr))
		for k, ev := range tr {
			pos[ev.ActionMsg] = k
		}
		seen := make([]bool, len(tr))
		last, distinct := -1, 0 // the newest event delivered so far
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			k, ok := pos[c.ActionMsg]
			switch {
			case !ok:
				tl.Unexpected++
				problem("waybill %s: unexpected delivery %q", tr[0].WaybillID, clipText(c.ActionMsg))
			case seen[k]:
				tl.Duplicates++
				if k != last {
					tl.OrderViolations++
					problem("waybill %s: %q (event %d) delivered again after event %d", tr[0].WaybillID, c.ActionMsg, k, last)
				}
			default:
				seen[k] = true
				distinct++
				if k != last+1 {
					tl.OrderViolations++
					problem("waybill %s: %q (event %d) delivered after event %d", tr[0].WaybillID, c.ActionMsg, k, last)
				}
				last = max(last, k)
			}
		}
		tl.Delivered += distinct
		tl.Missing += len(tr) - distinct
	}
	return tl
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func events(trs []trace) int {
	n := 0
	for _, tr := range trs {
		n += len(tr)
	}
	return n
}

// allDelivered reports whether every event of trs reached the sandbox.
func allDelivered(sb *sandbox.Server, trs []trace) bool {
	tl := count(sb, trs)
	return tl.Missing == 0 && tl.OrderViolations == 0
}

// drained reports whether the trace stream is empty (work-queue retention:
// every event acked) and every event of trs was delivered.
func drained(ctx context.Context, js jetstream.JetStream, sb *sandbox.Server, trs []trace) bool {
	return allDelivered(sb, trs) && streamSettled(ctx, js)
}

// streamSettled reports whether the trace stream holds nothing its
// partition consumers still have to deliver (natstest.WorkQueueSettled:
// empty, or only messages a restarted server kept after their acks).
func streamSettled(ctx context.Context, js jetstream.JetStream) bool {
	settled, _ := natstest.WorkQueueSettled(ctx, js, pathupdate.TraceStream, isUnpartitioned)
	return settled
}

// isUnpartitioned names the consumer of unpartitioned subjects: it is
// given no events, so its ack floor stays 0.
func isUnpartitioned(consumer string) bool {
	return consumer == pathupdate.UnpartitionedConsumer(worker.ConsumerDefault)
}

// leftSubjects matches every message of the trace stream as stored
// (partition.logistics.trace.waybill), for lookups by subject.
const leftSubjects = "*.>"

// consumerInfos is the info of every consumer of st.
func consumerInfos(ctx context.Context, st jetstream.Stream) ([]*jetstream.ConsumerInfo, error) {
	var out []*jetstream.ConsumerInfo
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		out = append(out, ci)
	}
	return out, l.Err()
}

// readDeadLetters reads every record of the dead-letter stream, in stream
// order, the way an operator's tool would (direct gets).
func readDeadLetters(ctx context.Context, t *testing.T, js jetstream.JetStream) []deadletter.Record {
	t.Helper()
	st, err := js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []deadletter.Record
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("dead letter seq %d: %v", seq, err)
		}
		r, err := deadletter.FromRawMsg(m)
		if err != nil {
			t.Fatalf("dead letter seq %d does not read back: %v", seq, err)
		}
		out = append(out, r)
	}
	return out
}

// figures are what a scenario prints (and appends to the report file).
type figures struct {
	Scenario        string `json:"scenario"`
	Mode            string `json:"mode"`
	Seed            uint64 `json:"seed,omitempty"`
	Events          int    `json:"events"`     // published, hostile ones included
	Valid           int    `json:"valid"`      // events that must be delivered
	Delivered       int    `json:"delivered"`  // distinct valid events delivered
	Duplicates      int    `json:"duplicates"` // repeated deliveries (at least once)
	DeadLettered    int    `json:"deadlettered"`
	OrderViolations int    `json:"order_violations"`
	APICalls        int64  `json:"api_calls"`
	Seconds         int    `json:"seconds"`
	Notes           string `json:"notes,omitempty"`
}

// report logs f and appends it to PATHUPDATE_CHAOS_REPORT when set.
func (f figures) report(t *testing.T) {
	t.Helper()
	f.Mode = bySize("ci", "long")
	t.Logf("figures: events %d, valid %d, delivered %d, duplicates %d, dead-lettered %d, max order violations %d, API calls %d, %ds; %s",
		f.Events, f.Valid, f.Delivered, f.Duplicates, f.DeadLettered, f.OrderViolations, f.APICalls, f.Seconds, f.Notes)
	path := os.Getenv("PATHUPDATE_CHAOS_REPORT")
	if path == "" {
		return
	}
	b, _ := json.Marshal(f)
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("report file: %v", err)
		return
	}
	defer fh.Close()
	_, _ = fh.Write(append(b, '\n'))
}

// verify checks the outcome every scenario shares: every event of trs
// delivered, in order per waybill, nothing unexpected delivered; and
// returns the figures for the caller to complete.
func verify(t *testing.T, name string, sb *sandbox.Server, trs []trace, start time.Time) figures {
	t.Helper()
	tl := count(sb, trs)
	f := figures{Scenario: name, Events: events(trs), Valid: events(trs), Delivered: tl.Delivered,
		Duplicates: tl.Duplicates, OrderViolations: tl.OrderViolations, APICalls: sb.Stats().UpdateCalls,
		Seconds: int(time.Since(start).Round(time.Second).Seconds())}
	if tl.Missing > 0 || tl.OrderViolations > 0 || tl.Unexpected > 0 {
		t.Errorf("%s: %d missing, %d order violations, %d unexpected deliveries; first: %s",
			name, tl.Missing, tl.OrderViolations, tl.Unexpected, tl.firstProblem)
	}
	return f
}

// sortedKeys is for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// waitDrained waits until every event of trs is delivered and acked; on
// timeout it says what is missing, with the calls of a waybill that lacks
// events.
func waitDrained(ctx context.Context, t *testing.T, js jetstream.JetStream, sb *sandbox.Server, trs []trace) {
	t.Helper()
	for !drained(ctx, js, sb, trs) {
		select {
		case <-ctx.Done():
			tl := count(sb, trs)
			inStream, left := leftInStream(js)
			t.Fatalf("not drained in time: %d of %d events delivered, %d missing, %d order violations, %d still in the trace stream; %s\n%s%s",
				tl.Delivered, events(trs), tl.Missing, tl.OrderViolations, inStream, tl.firstProblem, explainMissing(sb, trs), left)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leftInStream is how many messages the trace stream still holds and, for
// a test that failed to drain, which ones (up to 10) and what each
// partition consumer says of its deliveries and acks: whether the workers
// hold them, or the consumers count them acked while the stream kept them.
func leftInStream(js jetstream.JetStream) (uint64, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return 0, fmt.Sprintf("trace stream: %v\n", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Sprintf("trace stream info: %v\n", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace stream: %d messages, first %d, last %d\n", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	// The messages left, by subject from the first (no lookup of each
	// sequence the stream removed).
	for seq, shown := info.State.FirstSeq, 0; info.State.Msgs > 0 && shown < 10; shown++ {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(leftSubjects))
		if err != nil {
			break
		}
		fmt.Fprintf(&b, "  left: seq %d %s\n", m.Sequence, m.Subject)
		seq = m.Sequence + 1
	}
	cis, err := consumerInfos(ctx, st)
	if err != nil {
		fmt.Fprintf(&b, "  consumers: %v\n", err)
	}
	for _, ci := range cis {
		fmt.Fprintf(&b, "  consumer %s: delivered stream %d, ack floor stream %d, ack pending %d, pending %d, redelivered %d, waiting %d\n",
			ci.Name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumPending, ci.NumRedelivered, ci.NumWaiting)
	}
	return info.State.Msgs, b.String()
}

// explainMissing shows the calls of the first waybill with an event not
// delivered.
func explainMissing(sb *sandbox.Server, trs []trace) string {
	for _, tr := range trs {
		delivered := map[string]bool{}
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			delivered[c.ActionMsg] = true
		}
		for _, ev := range tr {
			if !delivered[ev.ActionMsg] {
				return fmt.Sprintf("waybill %s lacks %q; its calls:\n%s", tr[0].WaybillID, ev.ActionMsg, callHistory(sb, tr[0].WaybillID))
			}
		}
	}
	return ""
}

// explainDuplicates shows the calls of up to n waybills that got an event
// twice.
func explainDuplicates(sb *sandbox.Server, trs []trace, n int) string {
	var b strings.Builder
	for _, tr := range trs {
		if n == 0 {
			break
		}
		seen := map[string]bool{}
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			if seen[c.ActionMsg] {
				fmt.Fprintf(&b, "waybill %s got %q twice; its calls:\n%s", tr[0].WaybillID, c.ActionMsg, callHistory(sb, tr[0].WaybillID))
				n--
				break
			}
			seen[c.ActionMsg] = true
		}
	}
	return b.String()
}

func callHistory(sb *sandbox.Server, waybill string) string {
	var b strings.Builder
	for _, c := range sb.Calls(waybill) {
		fmt.Fprintf(&b, "  call %d at %s pid %d: %q -> HTTP %d errcode %d\n", c.Seq, c.At.Format("15:04:05.000"), agentPID(c.UserAgent), c.ActionMsg, c.HTTPStatus, c.ErrCode)
	}
	return b.String()
}
