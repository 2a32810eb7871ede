package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestRestartResumesAtOnce stops a worker with SIGTERM and starts it again,
// as a deploy does, on its embedded JetStream server (the same --data-dir)
// or on a standalone one. --ack-wait and --pinned-ttl are 60 s and the
// test waits 10 s for the first delivery after the restart and 20 s for
// the rest: it passes only if the stopped worker handed back what it held
// (messages and pins) in a way the server, restarted or not, acts on at
// once, not because a timer ran out. Busy: the first worker held messages
// when it stopped; idle: it had received none, so it never learnt a pin.
// Killed: the idle worker was killed (SIGKILL), leaving its pull requests
// queued in the server, and the first message pinned one of them: the
// next worker must see that pin belongs to no one.
func TestRestartResumesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes")
	}
	for _, tc := range []struct {
		name                   string
		busy, embedded, killed bool
	}{
		{"busy/embedded", true, true, false},
		{"idle/embedded", false, true, false},
		{"busy/standalone", true, false, false},
		{"idle/standalone", false, false, false},
		{"idle-killed/standalone", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(50 * time.Millisecond)}})
			t.Cleanup(sb.Close)
			args := []string{"--concurrency", "1", "--ack-wait", "60s", "--pinned-ttl", "60s"}
			var natsURL string
			if tc.embedded {
				port := strconv.Itoa(natstest.FreePort(t))
				natsURL = "nats://127.0.0.1:" + port
				args = append(args, "--data-dir", t.TempDir(), "--embedded-port", port)
			} else {
				natsURL = natstest.Start(t).ClientURL()
			}
			workerURL := map[bool]string{true: "", false: natsURL}[tc.embedded]
			ctx := context.Background()
			trs := makeTraces(map[bool]string{true: "RB", false: "RI"}[tc.busy], 10, 4)

			w1 := startWorker(t, workerURL, sb, args...)
			js := connectWhenReady(t, natsURL)
			if tc.busy {
				publishAll(ctx, t, js, trs)
				waitUntil(t, "the first worker's first deliveries", 30*time.Second, func() bool { return sb.Stats().Delivered >= 2 })
			}
			if tc.killed {
				waitUntil(t, "the first worker pulling", 30*time.Second, func() bool { return pulling(ctx, js) })
				w1.kill9(t)
			} else if code := w1.term(t); code != 0 {
				t.Fatalf("worker exit code %d after SIGTERM, want 0:\n%s", code, tail(w1.out.String(), 10))
			}
			if tc.busy && sb.Stats().Delivered >= 40 {
				t.Fatal("the first worker delivered everything before it stopped: the test proves nothing")
			}
			if !tc.busy && !tc.embedded {
				// Before the next worker pulls: the first message then
				// meets only what the stopped worker left waiting.
				publishAll(ctx, t, js, trs)
			}

			mark := sb.Stats().Delivered
			restarted := time.Now()
			w2 := startWorker(t, workerURL, sb, args...)
			if tc.embedded {
				js = connectWhenReady(t, natsURL)
				if !tc.busy {
					publishAll(ctx, t, js, trs)
				}
			}
			waitUntil(t, "the first delivery after the restart (--ack-wait and --pinned-ttl are 60s)", 10*time.Second,
				func() bool { return sb.Stats().Delivered > mark })
			t.Logf("first delivery %s after the second worker's start", time.Since(restarted).Round(10*time.Millisecond))
			waitUntil(t, "every event delivered", 20*time.Second, func() bool { return streamEmpty(ctx, js) && allDelivered(sb, trs) })
			if dups := checkOrder(t, sb, trs); dups != 0 {
				t.Fatalf("%d duplicate deliveries across a graceful restart:\n%s", dups, tail(w2.out.String(), 10))
			}
		})
	}
}

// pulling reports whether every partition consumer of the trace stream
// has a pull request waiting: a worker took the partitions.
func pulling(ctx context.Context, js jetstream.JetStream) bool {
	for n := range pathupdate.DefaultPartitions {
		c, err := js.Consumer(ctx, pathupdate.TraceStream, fmt.Sprintf("pathupdate-p%d", n))
		if err != nil {
			return false
		}
		if info, err := c.Info(ctx); err != nil || info.NumWaiting == 0 {
			return false
		}
	}
	return true
}

// connectWhenReady connects to url once the server listens (an embedded
// one starts with its worker) and the worker has created the streams.
func connectWhenReady(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	var nc *nats.Conn
	waitUntil(t, "the embedded server and its streams", 30*time.Second, func() bool {
		if nc == nil {
			c, err := nats.Connect(url)
			if err != nil {
				return false
			}
			nc = c
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		_, err = js.Stream(context.Background(), pathupdate.TraceStream)
		return err == nil
	})
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
