package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestStopStartResumesAtOnce stops a worker gracefully and starts another,
// as a deploy does, with AckWait and PinnedTTL far longer than the test may
// wait: delivery must resume because the stopped worker handed everything
// back (its messages and the partitions' pins), not because a timer ran
// out. Busy: the first worker held messages when it stopped. Idle: it had
// received none, so it never learnt a pin id. Restarted: the JetStream
// server restarts on the same store in between, as the worker's embedded
// server does; kept: the server runs on, as a standalone one does.
func TestStopStartResumesAtOnce(t *testing.T) {
	const long = 60 * time.Second // neither may pass before the first delivery
	for _, tc := range []struct {
		name            string
		busy, restarted bool
	}{
		{"busy/kept", true, false},
		{"busy/restarted", true, true},
		{"idle/kept", false, false},
		{"idle/restarted", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := natstest.StartWithStore(t, dir)
			nc, js := natstest.Connect(t, s)
			if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
				t.Fatal(err)
			}
			b := setupWith(t, js, sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(20 * time.Millisecond)}})
			trs := traces("RES", 10, 4)
			cfg := worker.Config{AckWait: long, PinnedTTL: long, Concurrency: 1}

			first := &settledSignal{}
			if tc.busy {
				b.publishInterleaved(t, trs)
			}
			w1 := b.startWorker(t, withObserver(cfg, first))
			if tc.busy {
				waitFor(t, first.reached(1), 10*time.Second, "first worker's first delivery")
			}
			if err := w1.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := w1.Stats(); tc.busy && st.HandedBack == 0 {
				t.Fatalf("the first worker handed nothing back (%+v): the test proves nothing", st)
			}

			if tc.restarted {
				nc.Close()
				s.Shutdown()
				s = natstest.StartWithStore(t, dir)
				_, js = natstest.Connect(t, s)
				pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
				if err != nil {
					t.Fatal(err)
				}
				b = &bundle{js: js, sb: b.sb, pub: pub, api: b.api}
			}
			if !tc.busy {
				b.publishInterleaved(t, trs)
			}
			second := &settledSignal{}
			b.startWorker(t, withObserver(cfg, second))
			waitFor(t, second.reached(1), 10*time.Second, "first delivery after the restart (AckWait and PinnedTTL are 60 s)")
			b.waitSettled(t, 30*time.Second)
			if dups := b.checkDelivered(t, trs); dups != 0 {
				t.Fatalf("%d duplicate deliveries after a graceful stop", dups)
			}
		})
	}
}

func withObserver(cfg worker.Config, o worker.Observer) worker.Config {
	cfg.Observer = o
	return cfg
}
