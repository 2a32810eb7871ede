package status_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/internal/status"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func TestGatherShowsWorkersPartitionsBacklogAndDeadLetters(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if _, err := status.Gather(ctx, js, worker.ConsumerDefault); err == nil || !strings.Contains(err.Error(), "start a worker first") {
		t.Fatalf("before any worker: %v, want an error saying to start a worker", err)
	}
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{Seed: 1, Orders: map[string]string{}})
	t.Cleanup(sb.Close)
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{})
	for i := range 2 {
		w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
			MemberID: fmt.Sprintf("w%d", i), MemberTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// One unknown waybill (40199) lands in the dead-letter stream.
	if _, err := pub.Publish(ctx, pathupdate.Event{Token: "t", WaybillID: "NOBODY", ActionTime: 1, ActionType: pathupdate.ActionPickedUp, ActionMsg: "x"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n := len(sb.Calls("NOBODY")); n > 0 && sb.Calls("NOBODY")[n-1].HTTPStatus != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unknown waybill's event never reached the sandbox")
		}
	}
	// Then WeChat goes down: the rest waits in the stream.
	sb.SetFaults(sandbox.Faults{OutageUntil: time.Now().Add(time.Hour)})
	for i := range 40 {
		sb.AddOrder(fmt.Sprintf("W%d", i), "t")
		if _, err := pub.Publish(ctx, pathupdate.Event{Token: "t", WaybillID: fmt.Sprintf("W%d", i), ActionTime: 1, ActionType: pathupdate.ActionPickedUp, ActionMsg: "x"}); err != nil {
			t.Fatal(err)
		}
	}

	// Wait for what status must show: two workers holding 4 of the
	// 8 partitions each, the dead letter, and the 40 events held or pending.
	var r status.Report
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err = status.Gather(ctx, js, worker.ConsumerDefault)
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, m := range r.Workers {
			if len(m.Partitions) == 4 {
				held += 4
			}
		}
		var waiting uint64
		for _, p := range r.Partitions {
			waiting += p.Pending + uint64(p.AckPending)
		}
		if len(r.Workers) == 2 && held == 8 && r.DeadLetters.Total == 1 && waiting == 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed 2 workers x 4 partitions, 1 dead letter, 40 waiting: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range r.Workers {
		if len(m.Partitions) != 4 {
			t.Errorf("worker %s holds %v, want 4 of 8 partitions", m.ID, m.Partitions)
		}
	}
	for _, p := range r.Partitions {
		if p.Holder == "" {
			t.Errorf("partition %d has no holder", p.Partition)
		}
	}
	if r.DeadLetters.ByReason["rejected"] != 1 || r.DeadLetters.ByErrCode[40199] != 1 {
		t.Errorf("dead letters %+v, want one rejected/40199", r.DeadLetters)
	}
	if r.Trace.Messages != 40 {
		t.Errorf("trace stream holds %d, want 40", r.Trace.Messages)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LOGISTICS_TRACE", "w0", "w1", "pathupdate-p7", "Dead letters: 1", "40199: 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestGatherCountsUnpartitioned: messages published to a wildcard subject
// are stored without a partition; with no worker to dead-letter them,
// status is where they show.
func TestGatherCountsUnpartitioned(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"logistics.trace.*", "logistics.trace.>", "logistics.trace.*", "logistics.trace.W1"} {
		if _, err := js.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := status.Gather(ctx, js, worker.ConsumerDefault)
	if err != nil {
		t.Fatal(err)
	}
	if r.Unpartitioned != 3 || r.Trace.Messages != 4 {
		t.Fatalf("unpartitioned %d of %d messages, want 3 of 4", r.Unpartitioned, r.Trace.Messages)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Unpartitioned: 3 messages published to a wildcard subject") {
		t.Fatalf("status does not show them:\n%s", out.String())
	}
	if r.History != nil || !strings.Contains(out.String(), "History: off") {
		t.Fatalf("no history stream, yet status says:\n%s", out.String())
	}

	if err := history.EnsureStream(ctx, js, history.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if r, err = status.Gather(ctx, js, worker.ConsumerDefault); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	if r.History == nil || r.History.MaxAge != history.MaxAgeDefault || !strings.Contains(out.String(), "History: empty; records kept 7 days") {
		t.Fatalf("history report %+v:\n%s", r.History, out.String())
	}
}

// TestGatherShowsPause: status says an operator's pause first, with its
// end, and says nothing of one once resumed.
func TestGatherShowsPause(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	tg, err := pause.TargetOf(ctx, js, worker.ConsumerDefault)
	if err != nil {
		t.Fatal(err)
	}
	show := func() (status.Report, string) {
		t.Helper()
		r, err := status.Gather(ctx, js, worker.ConsumerDefault)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := r.Write(&out); err != nil {
			t.Fatal(err)
		}
		return r, out.String()
	}
	if r, out := show(); r.Pause.Paused || strings.Contains(out, "paused") {
		t.Fatalf("never paused, yet status says:\n%s", out)
	}

	end := time.Now().Add(time.Hour).Truncate(time.Second)
	if _, err := pause.Pause(ctx, js, tg, end); err != nil {
		t.Fatal(err)
	}
	r, out := show()
	want := "Delivery paused until " + end.UTC().Format(time.RFC3339) + " (by an operator since "
	if !r.Pause.Paused || !strings.HasPrefix(out, want) || !strings.Contains(out, "`pathupdate resume` lifts it") {
		t.Fatalf("paused until %s, status says:\n%s", end, out)
	}
	if !strings.Contains(out, "3 of its consumers do not exist yet: a worker creates them paused") {
		t.Fatalf("status does not say the consumers are missing:\n%s", out)
	}

	if _, err := pause.Pause(ctx, js, tg, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, out := show(); !strings.HasPrefix(out, "Delivery paused until resumed (by an operator since ") {
		t.Fatalf("paused until resumed, status says:\n%s", out)
	}

	if _, err := pause.Resume(ctx, js, tg); err != nil {
		t.Fatal(err)
	}
	if r, out := show(); r.Pause.Paused || strings.Contains(out, "paused") {
		t.Fatalf("resumed, yet status says:\n%s", out)
	}
}
