package worker_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
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

// settleObserver reports every settlement on a channel and counts calls.
type settleObserver struct {
	worker.NopObserver
	calls   atomic.Int64
	settled chan worker.Settlement
}

func (o *settleObserver) APICall(pathupdate.Outcome, time.Duration) { o.calls.Add(1) }
func (o *settleObserver) Settled(s worker.Settlement)               { o.settled <- s }

// TestOutageNeverSpendsTheBudget: with a budget of one attempt, WeChat
// unreachable (nothing listens: the access_token fetch and the call are
// refused) for a whole outage, the event is not dead-lettered, and it is
// delivered once when WeChat is back. Before the retry decision moved into
// retry.Decide, the first refused token fetch dead-lettered it as
// retries_exhausted.
func TestOutageNeverSpendsTheBudget(t *testing.T) {
	t.Parallel()
	outage := 60 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}

	// WeChat's address, with nothing listening on it yet: a port from
	// below the ephemeral range, so no other process's connection takes
	// it before WeChat comes back on it.
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	sb, err := sandbox.New(sandbox.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	tokens, err := pathupdate.NewStableTokenSource(pathupdate.TokenConfig{
		APIBase: base, AppID: sandbox.DefaultAppID, AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret),
	})
	if err != nil {
		t.Fatal(err)
	}
	api, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: base, Tokens: tokens, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	obs := &settleObserver{settled: make(chan worker.Settlement, 1)}
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
		Retry:    retry.Policy{InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond, MaxAttempts: 1},
		Breaker:  retry.BreakerConfig{OpenInitial: 50 * time.Millisecond, OpenMax: time.Second},
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

	ev := pathupdate.Event{Token: "tok-outage", WaybillID: "OUTAGE1", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "in transit"}
	sb.AddOrder(ev.WaybillID, ev.Token)
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}

	down := time.NewTimer(outage) // the outage's length is the scenario, not a synchronisation
	select {
	case st := <-obs.settled:
		t.Fatalf("settled during the outage (after %d calls): %+v", obs.calls.Load(), st)
	case <-down.C:
	}
	if n := obs.calls.Load(); n < 3 {
		t.Fatalf("%d calls during a %s outage: the outage was not met", n, outage)
	}

	// WeChat is back, on the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("sandbox server: %v", err)
		}
	})

	select {
	case st := <-obs.settled:
		if !st.Delivered {
			t.Fatalf("settled after the outage as %+v, want delivered", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("not delivered within 30 s after the outage ended (%d calls)", obs.calls.Load())
	}
	if got := sb.Delivered(ev.WaybillID); len(got) != 1 {
		t.Fatalf("WeChat got the event %d times, want once", len(got))
	}
	b := &bundle{js: js}
	if dls := b.deadLetters(t); len(dls) != 0 {
		t.Fatalf("%d dead letters, want none: %+v", len(dls), dls)
	}
}

// deadLetterObserver reports each dead-lettered settlement.
type deadLetterObserver struct {
	worker.NopObserver
	dead chan worker.Settlement
}

func (o *deadLetterObserver) Settled(s worker.Settlement) {
	if !s.Delivered {
		o.dead <- s
	}
}

// TestOwnFailureSpendsTheBudget: an event WeChat answers -1 every time
// while other events go through is dead-lettered as retries_exhausted
// after its budget, and the others are delivered.
func TestOwnFailureSpendsTheBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{})
	const poison = "POISON1"
	b.sb.SetFaults(sandbox.Faults{SystemErrorWaybills: []string{poison}})
	obs := &deadLetterObserver{dead: make(chan worker.Settlement, 1)}
	b.startWorker(t, worker.Config{
		Retry:    retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxAttempts: 3},
		Observer: obs,
	})
	ctx := context.Background()
	bad := pathupdate.Event{Token: "tok-p", WaybillID: poison, ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "poison"}
	b.sb.AddOrder(bad.WaybillID, bad.Token)
	if _, err := b.pub.Publish(ctx, bad); err != nil {
		t.Fatal(err)
	}
	// Other traffic keeps flowing: it is what shows the -1 is the event's own.
	trs := traces("G", 10, 200)
	b.register(trs)
	var got worker.Settlement
	published := 0
	deadline := time.After(60 * time.Second)
publish:
	for j := 0; ; j++ {
		select {
		case got = <-obs.dead:
			break publish
		case <-deadline:
			t.Fatalf("the poison event was not dead-lettered within 60 s (%d other events published)", published)
		default:
		}
		if j >= 200 {
			select {
			case got = <-obs.dead:
				break publish
			case <-deadline:
				t.Fatal("the poison event was not dead-lettered within 60 s of all other traffic")
			}
		}
		for _, tr := range trs {
			if _, err := b.pub.Publish(ctx, tr[j]); err != nil {
				t.Fatal(err)
			}
			published++
		}
	}
	if got.Reason != deadletter.ReasonRetriesExhausted || got.Attempts < 3 {
		t.Fatalf("poison settled as %+v, want retries_exhausted after at least 3 calls", got)
	}
	if n := len(b.sb.Delivered(poison)); n != 0 {
		t.Fatalf("poison delivered %d times", n)
	}
	b.waitSettled(t, 30*time.Second)
	dls := b.deadLetters(t)
	if len(dls) != 1 || dls[0].WaybillID != poison || dls[0].Reason != deadletter.ReasonRetriesExhausted {
		t.Fatalf("dead letters %+v, want the poison event's alone", dls)
	}
}
