package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func TestInOrderPerWaybillWithSystemErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.2}})
	trs := traces("ORD", 300, 12) // 3,600 events over 300 waybills
	b.register(trs)
	b.publishInterleaved(t, trs)
	w := b.startWorker(t, worker.Config{Concurrency: 32})
	b.waitSettled(t, 2*time.Minute)

	dups := b.checkDelivered(t, trs)
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none: first %+v", len(dl), dl[0])
	}
	st := w.Stats()
	if st.Retries == 0 {
		t.Fatal("no retries counted although the sandbox answered -1 to a fifth of the calls")
	}
	if st.Delivered != 3600 {
		t.Fatalf("worker counted %d delivered, want 3600", st.Delivered)
	}
	if dups != 0 {
		t.Fatalf("%d duplicate deliveries without any crash", dups)
	}
}

func TestDeadLettersOnlyWhatWeChatRejects(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.1}})
	good := traces("GOOD", 20, 5)
	b.register(good)
	unknown := traces("UNKN", 3, 2) // never registered: 40199
	wrongTok := traces("WTOK", 2, 3)
	b.register(wrongTok)
	for i := range wrongTok {
		for j := range wrongTok[i] {
			wrongTok[i][j].Token = "not-the-registered-token"
		}
	}
	ctx := context.Background()
	// Garbage on a good waybill's subject first: the valid events behind it
	// must still be delivered.
	garbage := map[string][]byte{
		"not json":        []byte("not json"),
		"wrong type":      []byte(`{"token":"t","waybill_id":"GOOD0000","action_time":"x","action_type":100001,"action_msg":"m"}`),
		"bad action_type": []byte(`{"token":"t","waybill_id":"GOOD0000","action_time":1,"action_type":300001,"action_msg":"m"}`),
		"other waybill":   []byte(`{"token":"t","waybill_id":"GOOD0001","action_time":1,"action_type":100001,"action_msg":"m"}`),
		"empty":           nil,
	}
	for _, body := range garbage {
		if _, err := b.js.Publish(ctx, pathupdate.TraceSubject("GOOD0000"), body); err != nil {
			t.Fatal(err)
		}
	}
	b.publishInterleaved(t, good)
	b.publishInterleaved(t, unknown)
	b.publishInterleaved(t, wrongTok)
	b.startWorker(t, worker.Config{})
	b.waitSettled(t, time.Minute)

	b.checkDelivered(t, good)
	counts := map[string]int{}
	for _, r := range b.deadLetters(t) {
		key := r.Reason
		switch r.Reason {
		case deadletter.ReasonRejected:
			if r.ErrCode != pathupdate.ErrcodeWaybillNotFound && r.ErrCode != pathupdate.ErrcodeIncorrectToken {
				t.Fatalf("rejected dead letter with errcode %d", r.ErrCode)
			}
			if r.ErrCode == pathupdate.ErrcodeWaybillNotFound && r.WaybillID[:4] != "UNKN" ||
				r.ErrCode == pathupdate.ErrcodeIncorrectToken && r.WaybillID[:4] != "WTOK" {
				t.Fatalf("dead letter %d for waybill %s", r.ErrCode, r.WaybillID)
			}
			key = r.Reason + "/" + map[int]string{40199: "40199", 9300507: "9300507"}[r.ErrCode]
			if _, err := pathupdate.DecodeEvent(r.Event); err != nil {
				t.Fatalf("rejected dead letter does not carry the original event: %v", err)
			}
		case deadletter.ReasonInvalidEvent:
			if r.WaybillID != "GOOD0000" || r.ErrMsg == "" {
				t.Fatalf("invalid_event dead letter %+v: want waybill GOOD0000 and a reason", r)
			}
		default:
			t.Fatalf("unexpected dead letter reason %q (%+v)", r.Reason, r)
		}
		if r.OriginalSeq == 0 || r.OriginalSubject == "" || r.FailedAt.IsZero() {
			t.Fatalf("dead letter lacks its origin: %+v", r)
		}
		counts[key]++
	}
	want := map[string]int{"rejected/40199": 6, "rejected/9300507": 6, "invalid_event": len(garbage)}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d dead letters, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("dead letters %v, want exactly %v", counts, want)
	}
}

func TestOutageDeadLettersNothing(t *testing.T) {
	t.Parallel()
	outage := 60 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	b := setup(t, sandbox.Config{})
	trs := traces("OUT", 100, 10)
	b.register(trs)
	// The budget is small on purpose: an outage must not spend it.
	cfg := worker.Config{Retry: retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 3}}
	opened := make(chan struct{})
	var once sync.Once
	cfg.Breaker.OnChange = func(_, to retry.BreakerState) {
		if to != retry.Closed {
			once.Do(func() { close(opened) })
		}
	}
	b.startWorker(t, cfg)
	b.publishInterleaved(t, trs[:50])
	b.sb.SetFaults(sandbox.Faults{OutageUntil: time.Now().Add(outage)})
	b.publishInterleaved(t, trs[50:])

	waitFor(t, opened, outage, "the breaker opening during the outage")
	b.waitSettled(t, outage+time.Minute)
	b.checkDelivered(t, trs)
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters after an outage, want none: first %+v", len(dl), dl[0])
	}
}

func TestRestartMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.1, Latency: sandbox.Duration(2 * time.Millisecond)}})
	trs := traces("RST", 200, 10)
	b.register(trs)
	b.publishInterleaved(t, trs)
	settled := &settledSignal{}
	w1 := b.startWorker(t, worker.Config{Concurrency: 8, Observer: settled})
	// Stop once a part of the work is done, so the stop lands mid-run.
	waitFor(t, settled.reached(300), time.Minute, "300 events settled")
	if err := w1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := w1.Stats()
	if first.Delivered >= 2000 {
		t.Fatalf("the first worker delivered everything (%d) before it was stopped; the test proves nothing", first.Delivered)
	}
	b.startWorker(t, worker.Config{Concurrency: 8})
	b.waitSettled(t, time.Minute)
	b.checkDelivered(t, trs)
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none", len(dl))
	}
}

func TestHeldMessagesAreNotRedelivered(t *testing.T) {
	t.Parallel()
	// Each call takes longer than AckWait; without keep-alive JetStream would
	// redeliver the queued messages, and WeChat would see them twice.
	b := setup(t, sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(1500 * time.Millisecond)}})
	trs := traces("HOLD", 4, 3)
	b.publishInterleaved(t, trs)
	w := b.startWorker(t, worker.Config{AckWait: time.Second, Concurrency: 4})
	b.waitSettled(t, time.Minute)
	if dups := b.checkDelivered(t, trs); dups != 0 {
		t.Fatalf("%d duplicate deliveries: held messages were redelivered and processed twice", dups)
	}
	st := w.Stats()
	if st.Received != 12 {
		t.Fatalf("worker took %d messages, want 12 (redeliveries of held messages must merge): %+v", st.Received, st)
	}
	if st.RedeliveriesMerged != 0 {
		t.Fatalf("JetStream redelivered %d held messages: keep-alive did not hold them", st.RedeliveriesMerged)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  worker.Config
	}{
		{"negative in-flight", worker.Config{MaxInFlight: -1}},
		{"negative concurrency", worker.Config{Concurrency: -2}},
		{"ack wait too short", worker.Config{AckWait: 10 * time.Millisecond}},
		{"negative shutdown", worker.Config{ShutdownTimeout: -time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.WithDefaults().Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
	if err := (worker.Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
}

func TestGracefulStopHandsOverWithoutDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 0.1, Latency: sandbox.Duration(3 * time.Millisecond)}})
	trs := traces("GRC", 200, 10)
	b.register(trs)
	b.publishInterleaved(t, trs)
	s1, s2 := &settledSignal{}, &settledSignal{}
	w1 := b.startWorker(t, worker.Config{Concurrency: 8, MemberTTL: time.Second, Observer: s1})
	w2 := b.startWorker(t, worker.Config{Concurrency: 8, MemberTTL: time.Second, Observer: s2})
	// Stop one once both are busy, and again start one: shares move twice.
	waitFor(t, s1.reached(200), time.Minute, "200 events settled by the first worker")
	waitFor(t, s2.reached(200), time.Minute, "200 events settled by the second worker")
	if err := w1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w1.Stats().HandedBack == 0 && w1.Stats().Delivered+w2.Stats().Delivered >= 2000 {
		t.Fatal("the stop landed after the work was done; the test proves nothing")
	}
	b.startWorker(t, worker.Config{Concurrency: 8, MemberTTL: time.Second})
	b.waitSettled(t, 2*time.Minute)
	if dups := b.checkDelivered(t, trs); dups != 0 {
		t.Fatalf("%d duplicate deliveries after graceful hand-overs: a graceful stop must redeliver nothing that was delivered", dups)
	}
}
