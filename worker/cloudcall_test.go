package worker_test

import (
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestCloudCallTransport runs the worker with the cloudcall client: the
// function's -1 is retried, its 40199 and 9300507 dead-lettered, every
// good trace arrives complete and in order, all through the sandbox's
// /tcb/invokecloudfunction.
func TestCloudCallTransport(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.2}})
	b.api = wechattest.Client(t, b.sb, pathupdate.ClientConfig{Transport: pathupdate.TransportCloudCall, CloudEnv: sandbox.DefaultCloudEnv, CloudFunction: sandbox.DefaultCloudFunction})

	good := traces("CGOOD", 30, 6)
	b.register(good)
	unknown := traces("CUNKN", 2, 2) // never registered: 40199
	wrongTok := traces("CWTOK", 2, 3)
	b.register(wrongTok)
	for i := range wrongTok {
		for j := range wrongTok[i] {
			wrongTok[i][j].Token = "not-the-registered-token"
		}
	}
	b.publishInterleaved(t, good)
	b.publishInterleaved(t, unknown)
	b.publishInterleaved(t, wrongTok)
	w := b.startWorker(t, worker.Config{Concurrency: 16})
	b.waitSettled(t, time.Minute)

	b.checkDelivered(t, good)
	counts := map[int]int{}
	for _, r := range b.deadLetters(t) {
		if r.Reason != deadletter.ReasonRejected {
			t.Fatalf("dead letter %+v: only rejections expected", r)
		}
		counts[r.ErrCode]++
	}
	if counts[40199] != 4 || counts[9300507] != 6 || len(counts) != 2 {
		t.Fatalf("dead letters by errcode %v, want 40199: 4 and 9300507: 6", counts)
	}
	if st := w.Stats(); st.Retries == 0 || st.Delivered != 180 {
		t.Fatalf("worker stats %+v: want retries after the function's -1 and 180 delivered", st)
	}
	st := b.sb.Stats()
	if st.CloudCalls == 0 || st.CloudCalls != st.UpdateCalls {
		t.Fatalf("sandbox stats %+v: every call should have come through the cloud call", st)
	}
	for _, c := range b.sb.Calls(good[0][0].WaybillID) {
		if c.Via != sandbox.ViaCloudCall {
			t.Fatalf("call %+v did not come through the cloud call", c)
		}
	}
}
