package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestEmbeddedRestartResumesAtOnce restarts a worker that runs its own
// embedded JetStream server (SIGTERM, then the same command again on the
// same --data-dir), as a deploy does. --ack-wait and --pinned-ttl are 60 s
// and the test waits 10 s for the first delivery after the restart: it
// passes only if the stopped worker handed back what it held in a way the
// restarted server remembers, not because a timer ran out. Busy: the first
// worker held messages when it stopped; idle: it had received none.
func TestEmbeddedRestartResumesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes")
	}
	for _, busy := range []bool{true, false} {
		name := map[bool]string{true: "busy", false: "idle"}[busy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(50 * time.Millisecond)}})
			t.Cleanup(sb.Close)
			dir, port := t.TempDir(), strconv.Itoa(freeTCPPort(t))
			args := []string{"--data-dir", dir, "--embedded-port", port, "--concurrency", "1",
				"--ack-wait", "60s", "--pinned-ttl", "60s"}
			ctx := context.Background()
			trs := makeTraces("ER"+name, 10, 4)

			w1 := startWorker(t, "", sb, args...)
			js := connectEmbedded(t, port, w1)
			if busy {
				publishAll(ctx, t, js, trs)
				waitUntil(t, "the first worker's first deliveries", 30*time.Second, func() bool { return sb.Stats().Delivered >= 2 })
			}
			if code := w1.term(t); code != 0 {
				t.Fatalf("worker exit code %d after SIGTERM, want 0:\n%s", code, tail(w1.out.String(), 10))
			}
			if busy && sb.Stats().Delivered >= 40 {
				t.Fatal("the first worker delivered everything before it stopped: the test proves nothing")
			}

			mark := sb.Stats().Delivered
			w2 := startWorker(t, "", sb, args...)
			js = connectEmbedded(t, port, w2)
			if !busy {
				publishAll(ctx, t, js, trs)
			}
			waitUntil(t, "the first delivery after the restart (--ack-wait and --pinned-ttl are 60s)", 10*time.Second,
				func() bool { return sb.Stats().Delivered > mark })
			waitUntil(t, "every event delivered", 30*time.Second, func() bool { return streamEmpty(ctx, js) && allDelivered(sb, trs) })
			if dups := checkOrder(t, sb, trs); dups != 0 {
				t.Fatalf("%d duplicate deliveries across a graceful restart", dups)
			}
		})
	}
}

// connectEmbedded connects to the embedded server of w once it listens
// and its streams exist.
func connectEmbedded(t *testing.T, port string, w *workerProc) jetstream.JetStream {
	t.Helper()
	var nc *nats.Conn
	waitUntil(t, "the embedded server and its streams", 30*time.Second, func() bool {
		if nc == nil {
			c, err := nats.Connect("nats://127.0.0.1:" + port)
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
