package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestNoStreamAnswers503(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noStreams: true, ackTimeout: 2 * time.Second})
	r := b.post(t, array(event("NOS", 1), event("NOS", 2), `{}`), nil)
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") != "5" {
		t.Fatalf("answer %d, Retry-After %q; want 503, 5: %s", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	got := r.results(t)
	if got.Failed != 2 || got.Invalid != 1 || got.Accepted != 0 {
		t.Fatalf("counts: %s", r.body)
	}
	if res := got.Results[0]; res.Status != gateway.StatusFailed || !strings.Contains(res.Error, "no JetStream stream answered") || res.MsgID == "" {
		t.Errorf("result 0 should say the stream is missing and give the msg id: %+v", res)
	}
	if res := got.Results[1]; res.Status != gateway.StatusFailed || !strings.Contains(res.Error, "not published") {
		t.Errorf("result 1 (after the failure, same waybill) should be failed, not attempted: %+v", res)
	}
	if !strings.Contains(got.Error, "send the events marked failed again") {
		t.Errorf("the 503 does not say what to do: %q", got.Error)
	}
}

// TestStreamFullPartialAnswer: when the stream starts refusing in the
// middle of a request, the answer says exactly which events were stored.
func TestStreamFullPartialAnswer(t *testing.T) {
	t.Parallel()
	nc, js := natstest.Connect(t, natstest.Start(t))
	// Room for a few events only; a full stream refuses (DiscardNew).
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{Storage: jetstream.MemoryStorage, MaxBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	b := setup(t, setupOpts{nc: nc, noStreams: true})
	var evs []string
	for i := range 20 {
		evs = append(evs, event("FULL", i))
	}
	r := b.post(t, array(evs...), nil)
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("answer %d, want 503: %s", r.code, r.body)
	}
	got := r.results(t)
	k := got.Accepted
	if k < 1 || k >= len(evs) || got.Failed != len(evs)-k {
		t.Fatalf("want some accepted, the rest failed: %s", r.body)
	}
	for i, res := range got.Results {
		switch {
		case i < k && (res.Status != gateway.StatusAccepted || res.Seq != uint64(i+1)):
			t.Errorf("result %d: %+v, want accepted as sequence %d", i, res, i+1)
		case i == k && (res.Status != gateway.StatusFailed || !strings.Contains(res.Error, "maximum bytes")):
			t.Errorf("result %d: %+v, want failed with the stream's refusal", i, res)
		case i > k && (res.Status != gateway.StatusFailed || !strings.Contains(res.Error, "not published")):
			t.Errorf("result %d: %+v, want failed, not attempted", i, res)
		}
	}
	if n := len(stored(t, js)); n != k {
		t.Fatalf("stream holds %d events, answer says %d accepted", n, k)
	}
}

// TestNATSDownAndBackUp: while the connection is down the gateway answers
// 503 at once, publishing nothing; after the reconnect it publishes again.
func TestNATSDownAndBackUp(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	start := func(port int) *natsserver.Server {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		s, err := natsserver.Start(ctx, natsserver.Config{Port: port, StoreDir: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		return s
	}
	ns := start(natsserver.RandomPort)
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())

	disconnected, reconnected := make(chan struct{}, 1), make(chan struct{}, 1)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnected <- struct{}{} }),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// File storage: the stream outlives the server's restart.
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	b := setup(t, setupOpts{nc: nc, noStreams: true, cfg: gateway.Config{RetryAfter: 7 * time.Second}})

	if r := b.post(t, event("DOWN", 0), nil); r.code != http.StatusOK {
		t.Fatalf("before the outage: answer %d: %s", r.code, r.body)
	}
	ns.Shutdown()
	<-disconnected

	body := array(event("DOWN", 1), event("DOWN", 2), `{"token":"x"}`)
	began := time.Now()
	r := b.post(t, body, nil)
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") != "7" {
		t.Fatalf("during the outage: answer %d, Retry-After %q; want 503, 7: %s", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the 503 took %s: a known outage should be answered at once", took)
	}
	got := r.results(t)
	if got.Failed != 2 || got.Invalid != 1 || got.Accepted+got.Duplicates != 0 {
		t.Fatalf("during the outage: %s", r.body)
	}
	for _, res := range got.Results[:2] {
		if !strings.Contains(res.Error, "not connected to NATS") || res.MsgID == "" {
			t.Errorf("result %+v should say NATS is not connected and give the msg id", res)
		}
	}

	start(port)
	<-reconnected
	r = b.post(t, body, nil)
	if r.code != http.StatusMultiStatus || r.results(t).Accepted != 2 {
		t.Fatalf("after the outage: answer %d: %s", r.code, r.body)
	}
	var msgs []string
	for _, e := range stored(t, js) {
		msgs = append(msgs, e.ActionMsg)
	}
	if strings.Join(msgs, ",") != "step 0,step 1,step 2" {
		t.Fatalf("stream holds %q, want the event from before and the two sent again after the outage", msgs)
	}
}

// TestPublishTimeoutAnswers503: when the connection looks up but nothing
// answers, each waybill's first publish waits out the ack timeout (in
// parallel), the rest is not attempted, and the answer is 503.
func TestPublishTimeoutAnswers503(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b := setup(t, setupOpts{nc: nc, ackTimeout: 300 * time.Millisecond,
		cfg: gateway.Config{Connected: func() bool { return true }}})
	ns.Shutdown()

	began := time.Now()
	r := b.post(t, array(event("TA", 1), event("TA", 2), event("TB", 1), event("TC", 1)), nil)
	took := time.Since(began)
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("answer %d, want 503: %s", r.code, r.body)
	}
	got := r.results(t)
	if got.Failed != 4 {
		t.Fatalf("want every event failed: %s", r.body)
	}
	if res := got.Results[1]; !strings.Contains(res.Error, "not published: an earlier publish") {
		t.Errorf("the second event of a waybill whose first failed was attempted: %+v", res)
	}
	if took > 3*time.Second {
		t.Errorf("the answer took %s: publishes of different waybills should time out together", took)
	}
}
