package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, within)
		case <-tick.C:
		}
	}
}

// TestWrongSecretPausesAtStart: a wrong AppSecret shows at start, not at
// the first event: the worker says what to fix, is not ready, tells the
// members bucket why it is paused, dead-letters nothing, and delivers once
// WeChat accepts the credentials.
func TestWrongSecretPausesAtStart(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	// WeChat knows another secret at first; then it is put right.
	refusing, err := sandbox.New(sandbox.Config{Seed: 1, AppSecret: "rotated-secret", AcceptAnyWaybill: true})
	if err != nil {
		t.Fatal(err)
	}
	accepting, err := sandbox.New(sandbox.Config{Seed: 1, AcceptAnyWaybill: true})
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[sandbox.Sandbox]
	current.Store(refusing)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	tokens, err := pathupdate.NewStableTokenSource(pathupdate.TokenConfig{
		APIBase: srv.URL, AppID: sandbox.DefaultAppID, AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret), HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	api, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL, Tokens: tokens, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	obs := &settleObserver{settled: make(chan worker.Settlement, 1)}
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
		MemberID: "w-creds",
		Breaker:  retry.BreakerConfig{OpenInitial: 50 * time.Millisecond, OpenMax: 200 * time.Millisecond},
		Observer: obs,
		Logger:   testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	// Right after Start, before any event.
	err = w.Credentials()
	if err == nil || !strings.Contains(err.Error(), "40125") || !strings.Contains(err.Error(), "--appsecret") {
		t.Fatalf("Credentials() after start = %v, want errcode 40125 and what to fix (--appsecret)", err)
	}
	if strings.Contains(err.Error(), sandbox.DefaultAppSecret) {
		t.Fatal("the credentials problem quotes the secret")
	}
	waitUntil(t, 10*time.Second, "the members bucket says why the worker is paused", func() bool {
		ms, err := worker.Members(ctx, js)
		return err == nil && len(ms) == 1 && strings.Contains(ms[0].Paused, "40125")
	})

	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := pathupdate.Event{Token: "tok", WaybillID: "CREDS1", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "m"}
	if _, err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the event meets the refused credentials", func() bool { return obs.calls.Load() >= 2 })
	select {
	case st := <-obs.settled:
		t.Fatalf("settled while the credentials are refused: %+v", st)
	default:
	}

	current.Store(accepting)
	select {
	case st := <-obs.settled:
		if !st.Delivered {
			t.Fatalf("settled as %+v, want delivered", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not delivered within 30 s of the credentials being accepted")
	}
	waitUntil(t, 30*time.Second, "the worker is ready again", func() bool { return w.Credentials() == nil && w.Health().Why == "" })
	b := &bundle{js: js}
	if dls := b.deadLetters(t); len(dls) != 0 {
		t.Fatalf("%d dead letters, want none", len(dls))
	}
}
