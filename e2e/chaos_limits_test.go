package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestChaosTraceStreamFull gives the trace stream a small MaxBytes and
// publishes more than it holds while no worker runs. Every publish beyond
// the limit fails back to the producer (Publisher counts, `pathupdate
// publish` exit 1 and its counts) and the stream holds exactly the
// acknowledged events, nothing dropped in between. Then a worker drains
// it while the producer publishes the file again until every event is
// acknowledged (the advice `publish` gives): every event is delivered, in
// order per waybill.
func TestChaosTraceStreamFull(t *testing.T) {
	t.Parallel()
	const maxBytes = 32 << 10
	r := newRig(t, sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(5 * time.Millisecond)}},
		pathupdate.StreamsConfig{MaxBytes: maxBytes})
	ctx, cancel := context.WithTimeout(context.Background(), bySize(3*time.Minute, 10*time.Minute))
	defer cancel()
	trs := makeTraces("FULL", bySize(40, 200), bySize(10, 20))
	lines := jsonLines(trs)
	total := events(trs)

	pub, err := pathupdate.NewPublisher(r.js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := pub.PublishLines(ctx, bytes.NewReader(lines), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed == 0 || sum.Accepted == 0 || sum.Accepted+sum.Failed != total || sum.Invalid != 0 || sum.Duplicates != 0 {
		t.Fatalf("publishing %d events into a %d-byte stream: %+v; want some accepted and the rest failed", total, maxBytes, sum)
	}
	// Each refusal names the stream's limit, or says the line waits
	// behind a refused one of its waybill.
	for _, le := range sum.Errors {
		if !strings.Contains(le.Err.Error(), "maximum bytes") && !errors.Is(le, pathupdate.ErrHeldBack) {
			t.Errorf("line %d failed with %v, want the stream's limit named", le.Line, le.Err)
			break
		}
	}
	// Nothing dropped silently: the stream holds exactly the acknowledged
	// events, and of each waybill the first ones, in order (a refused one
	// holds the waybill's later ones back). Waybills may interleave in
	// another order than the input's: a waybill's line waits for the
	// previous one's PubAck while other waybills' lines go on.
	stored := traceStreamData(ctx, t, r.js)
	if len(stored) != sum.Accepted {
		t.Fatalf("the stream holds %d events, %d were acknowledged", len(stored), sum.Accepted)
	}
	next := make(map[string]int) // waybill -> index of its next event expected in the stream
	byWaybill := make(map[string]trace)
	for _, tr := range trs {
		byWaybill[tr[0].WaybillID] = tr
	}
	for i, d := range stored {
		ev, err := pathupdate.DecodeEvent(d)
		if err != nil {
			t.Fatalf("stored event %d: %v", i+1, err)
		}
		tr, j := byWaybill[ev.WaybillID], next[ev.WaybillID]
		if j >= len(tr) || !bytes.Equal(d, tr[j].Encode()) {
			t.Fatalf("stored event %d is %s, want waybill %s's event %d next", i+1, d, ev.WaybillID, j+1)
		}
		next[ev.WaybillID]++
	}

	// The command line says the same, with exit code 1.
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(file, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runPublish(ctx, t, r.node.URL(), file)
	wantOut := fmt.Sprintf("accepted 0, duplicate %d, invalid 0, not acknowledged %d", sum.Accepted, sum.Failed)
	if code != 1 || !strings.Contains(out, wantOut) {
		t.Fatalf("pathupdate publish into the full stream: exit %d, output:\n%s\nwant exit 1 and %q", code, tail(out, 5), wantOut)
	}
	t.Logf("stream full: %d of %d events acknowledged, %d refused; `pathupdate publish` exit %d: %s", sum.Accepted, total, sum.Failed, code, wantOut)

	// A worker drains the stream; the producer publishes the whole file
	// again until everything is acknowledged.
	// The worker states the limit too: it writes its stream settings at
	// start. It works slowly, so the stream stays near full while the
	// producer publishes again and space frees up in between.
	w := startChaosWorker(t, r.node.URL(), r.sb.URL, workerOpts{Concurrency: 2, Extra: []string{"--max-bytes", fmt.Sprint(maxBytes)}})
	r.sb.SetFaults(sandbox.Faults{Latency: sandbox.Duration(20 * time.Millisecond)})
	rounds := 0
	for {
		rounds++
		code, out = runPublish(ctx, t, r.node.URL(), file)
		if code == 0 {
			break
		}
		if code != 1 || ctx.Err() != nil {
			t.Fatalf("republish round %d: exit %d:\n%s", rounds, code, tail(out, 5))
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	waitDrained(ctx, t, r.js, r.sb, trs)
	f := verify(t, "trace stream full", r.sb, trs, r.t0)
	f.Seed = r.seed
	f.DeadLettered = len(readDeadLetters(ctx, t, r.js))
	f.Notes = fmt.Sprintf("MaxBytes %d: %d of %d acknowledged at first, %d refused to the producer; the file published %d more times until all were acknowledged",
		maxBytes, sum.Accepted, total, sum.Failed, rounds)
	if f.DeadLettered != 0 {
		t.Errorf("%d dead letters, want none", f.DeadLettered)
	}
	requireHealthy(t, w)
	f.report(t)
	stopAll(t, w)
}

// TestChaosDeadLetterStreamFull: when the dead-letter stream is full,
// writing a dead letter fails; the worker keeps the original (it stays in
// the trace stream) and tries again, so nothing is lost. When the
// operator raises the limit, every rejected event is dead-lettered once.
func TestChaosDeadLetterStreamFull(t *testing.T) {
	t.Parallel()
	const dlMaxBytes = 8 << 10
	// No orders: the sandbox rejects every event with 40199.
	r := newRig(t, sandbox.Config{Faults: sandbox.Faults{Latency: sandbox.Duration(2 * time.Millisecond)}}, pathupdate.StreamsConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), bySize(2*time.Minute, 5*time.Minute))
	defer cancel()
	trs := makeTraces("DLF", bySize(20, 100), 5)
	total := events(trs)
	// The worker writes its own stream settings at start, and it has no
	// flag for the dead-letter stream's limits: the operator sets the
	// limit once the worker runs.
	w := startChaosWorker(t, r.node.URL(), r.sb.URL, workerOpts{})
	waitUntil(t, "the worker started", 30*time.Second, func() bool { return strings.Contains(w.out.String(), "worker started") })
	if err := pathupdate.EnsureStreams(ctx, r.js, pathupdate.StreamsConfig{DeadLetterMaxBytes: dlMaxBytes}); err != nil {
		t.Fatal(err)
	}
	publishAll(ctx, t, r.js, trs)

	// The dead-letter stream fills and stops growing; what did not fit
	// stays in the trace stream.
	var dlN, traceN uint64
	last, since := uint64(0), time.Now()
	waitUntil(t, "the dead-letter stream full and still", bySize(time.Minute, 3*time.Minute), func() bool {
		dlN, traceN = streamMsgs(ctx, r.js, pathupdate.DeadLetterStream), streamMsgs(ctx, r.js, pathupdate.TraceStream)
		if dlN != last {
			last, since = dlN, time.Now()
		}
		return dlN > 0 && traceN > 0 && time.Since(since) > 2*time.Second
	})
	if int(dlN+traceN) != total {
		t.Fatalf("dead-letter stream %d + trace stream %d = %d, want all %d events accounted for", dlN, traceN, dlN+traceN, total)
	}
	t.Logf("dead-letter stream full at %d records; %d events wait in the trace stream", dlN, traceN)

	// The operator raises the limit.
	if err := pathupdate.EnsureStreams(ctx, r.js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	var dls []deadletter.Record
	waitUntil(t, "every event dead-lettered", time.Minute, func() bool {
		return streamMsgs(ctx, r.js, pathupdate.DeadLetterStream) == uint64(total) && streamEmpty(ctx, r.js)
	})
	dls = readDeadLetters(ctx, t, r.js)
	seen := map[uint64]bool{}
	for _, d := range dls {
		if d.Reason != deadletter.ReasonRejected || d.ErrCode != sandbox.ErrcodeWaybillNotFound || seen[d.OriginalSeq] {
			t.Errorf("dead letter seq %d: reason %q errcode %d original seq %d (seen before: %v)", d.Seq, d.Reason, d.ErrCode, d.OriginalSeq, seen[d.OriginalSeq])
		}
		seen[d.OriginalSeq] = true
	}
	f := figures{Scenario: "dead-letter stream full", Seed: r.seed, Events: total, DeadLettered: len(dls),
		APICalls: r.sb.Stats().UpdateCalls, Seconds: int(time.Since(r.t0).Seconds()),
		Notes: fmt.Sprintf("DeadLetterMaxBytes %d held %d records; the rest waited in the trace stream until the limit was raised", dlMaxBytes, dlN)}
	if len(dls) != total {
		t.Errorf("%d dead letters, want %d", len(dls), total)
	}
	requireHealthy(t, w)
	f.report(t)
	stopAll(t, w)
}

func jsonLines(trs []trace) []byte {
	var b bytes.Buffer
	for j := 0; ; j++ {
		more := false
		for _, tr := range trs {
			if j < len(tr) {
				more = true
				b.Write(tr[j].Encode())
				b.WriteByte('\n')
			}
		}
		if !more {
			return b.Bytes()
		}
	}
}

// runPublish runs `pathupdate publish --file file` and returns its exit
// code and output.
func runPublish(ctx context.Context, t *testing.T, natsURL, file string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary, "publish", "--nats-url", natsURL, "--file", file, "--log-format", "json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("pathupdate publish: %v", err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// traceStreamData returns the payloads the trace stream holds, in order.
func traceStreamData(ctx context.Context, t *testing.T, js jetstream.JetStream) [][]byte {
	t.Helper()
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Data)
	}
	return out
}

func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) uint64 {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}
