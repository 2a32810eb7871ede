package status_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/internal/status"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestGatherShowsTheQuota: before any reading status says the quota is
// not known; once the watching worker read a spent quota, the report has
// 0 remaining and when delivery resumes.
func TestGatherShowsTheQuota(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	r, err := status.Gather(ctx, js, worker.ConsumerDefault)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	if r.Quota != nil || !strings.Contains(out.String(), "WeChat quota: not known yet") {
		t.Fatalf("before any worker: quota %+v, report:\n%s", r.Quota, out.String())
	}

	sb := sandbox.NewServer(sandbox.Config{Seed: 1, AcceptAnyWaybill: true, Faults: sandbox.Faults{DailyQuota: 3}})
	t.Cleanup(sb.Close)
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{})
	for i := range 3 { // the day's quota spent by someone else
		if o := api.UpdatePath(ctx, pathupdate.Event{Token: "t", WaybillID: "Q", ActionTime: int64(i + 1), ActionType: pathupdate.ActionPickedUp, ActionMsg: "x"}); o.Kind != pathupdate.Delivered {
			t.Fatal(o)
		}
	}
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{MemberID: "w0", QuotaInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, err = status.Gather(ctx, js, worker.ConsumerDefault); err != nil {
			t.Fatal(err)
		}
		if r.Quota != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no quota in the report within 30s of a worker starting")
		}
	}
	q := r.Quota
	if q.DailyLimit != 3 || q.Used != 3 || q.Remain != 0 || !q.Spent || q.By != "w0" || !q.ResumesAt.Equal(pathupdate.NextQuotaReset(q.At)) {
		t.Fatalf("quota %+v", q)
	}
	out.Reset()
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WeChat quota: 3 of 3 used today, 0 remaining", "spent: delivery paused until " + q.ResumesAt.Format(time.RFC3339)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
