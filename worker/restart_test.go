package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pathupdate/pathupdate/internal/natsserver"

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
// Orphan: besides, a worker that died while idle (its connection gone
// without a word) left pull requests queued, and the first message pinned
// one of them: a pin nobody holds, which the next worker must drop.
func TestStopStartResumesAtOnce(t *testing.T) {
	const long = 60 * time.Second // neither may pass before the first delivery
	for _, tc := range []struct {
		name                    string
		busy, restarted, orphan bool
	}{
		{"busy/kept", true, false, false},
		{"busy/restarted", true, true, false},
		{"idle/kept", false, false, false},
		{"idle/restarted", false, true, false},
		{"idle/orphan", false, false, true},
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
			if tc.orphan {
				leaveOrphanPullRequests(t, s, worker.ConsumerDefault, pathupdate.DefaultPartitions)
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

// leaveOrphanPullRequests sends a pull request of the partitions' priority
// group to each partition consumer from a connection it then closes
// without unsubscribing, as a killed process does: the server keeps the
// requests queued, and the next message it has for the consumer pins one.
func leaveOrphanPullRequests(t *testing.T, s *natsserver.Server, prefix string, partitions int) {
	t.Helper()
	clients := s.NATS().NumClients()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	for n := range partitions {
		inbox := nc.NewInbox()
		if _, err := nc.SubscribeSync(inbox); err != nil {
			t.Fatal(err)
		}
		subj := fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s-p%d", pathupdate.TraceStream, prefix, n)
		req := fmt.Sprintf(`{"batch":10,"expires":%d,"group":%q}`, time.Minute.Nanoseconds(), worker.PriorityGroup)
		if err := nc.PublishRequest(subj, inbox, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	// Until the server has let the connection go, a message would still
	// reach its subscription: a worker killed holding a message, not idle.
	waitUntil(t, 10*time.Second, "the server letting the connection go", func() bool { return s.NATS().NumClients() <= clients })
}
