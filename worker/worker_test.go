package worker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

// bundle is what a worker test needs: a real JetStream server with the
// streams, the sandbox over real HTTP, and a way to start workers.
type bundle struct {
	js  jetstream.JetStream
	sb  *sandbox.Server
	pub *pathupdate.Publisher
	api *pathupdate.Client
}

func setup(t *testing.T, sbcfg sandbox.Config) *bundle {
	t.Helper()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return setupWith(t, js, sbcfg)
}

// setupWith is setup on a JetStream whose streams exist.
func setupWith(t *testing.T, js jetstream.JetStream, sbcfg sandbox.Config) *bundle {
	t.Helper()
	if sbcfg.Seed == 0 {
		sbcfg.Seed = 1
	}
	sb := sandbox.NewServer(sbcfg)
	t.Cleanup(sb.Close)
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{Timeout: 5 * time.Second})
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{js: js, sb: sb, pub: pub, api: api}
}

// fastRetry keeps tests quick; the semantics are those of production.
var fastRetry = retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 50}

func testLogger(t *testing.T) zerolog.Logger {
	if os.Getenv("PATHUPDATE_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

func (b *bundle) startWorker(t *testing.T, cfg worker.Config) *worker.Worker {
	t.Helper()
	if cfg.Retry == (retry.Policy{}) {
		cfg.Retry = fastRetry
	}
	if cfg.Breaker.OpenInitial == 0 {
		cfg.Breaker.OpenInitial = 50 * time.Millisecond
		cfg.Breaker.OpenMax = 500 * time.Millisecond
	}
	cfg.Logger = testLogger(t)
	w, err := worker.New(b.js, b.api, deadletter.NewWriter(b.js, deadletter.WriterConfig{}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// traces makes n waybills of k events each; waybill i's token is tok-i.
func traces(prefix string, n, k int) [][]pathupdate.Event {
	out := make([][]pathupdate.Event, n)
	for i := range n {
		for j := range k {
			out[i] = append(out[i], pathupdate.Event{
				Token:      fmt.Sprintf("tok-%s-%d", prefix, i),
				WaybillID:  fmt.Sprintf("%s%04d", prefix, i),
				ActionTime: 1_767_225_600 + int64(j),
				ActionType: pathupdate.ActionInTransit,
				ActionMsg:  fmt.Sprintf("step %d", j),
			})
		}
	}
	return out
}

func (b *bundle) register(trs [][]pathupdate.Event) {
	for _, tr := range trs {
		b.sb.AddOrder(tr[0].WaybillID, tr[0].Token)
	}
}

// publishInterleaved publishes step j of every waybill before step j+1 of
// any, as a dispatch system with many parcels does.
func (b *bundle) publishInterleaved(t *testing.T, trs [][]pathupdate.Event) {
	t.Helper()
	ctx := context.Background()
	for j := 0; ; j++ {
		any := false
		for _, tr := range trs {
			if j < len(tr) {
				any = true
				if _, err := b.pub.Publish(ctx, tr[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !any {
			return
		}
	}
}

// waitSettled waits until the trace stream is empty: with work-queue
// retention an event leaves it when a worker acks it (delivered or
// dead-lettered). natstest.WorkQueueSettled also accepts messages every
// consumer counts as acked that a restarted node kept (a nats-server bug);
// the callers check the deliveries on the sandbox.
func (b *bundle) waitSettled(t *testing.T, timeout time.Duration) {
	t.Helper()
	b.waitSettledOr(t, timeout, func() string { return "" })
}

// waitSettledOr is waitSettled that adds describe's answer to the failure.
func (b *bundle) waitSettledOr(t *testing.T, timeout time.Duration, describe func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	settled := func() bool {
		// Each look on a deadline of its own: a request whose answer was
		// lost (a node restarted under the connection) would otherwise
		// wait out the whole timeout, and the drain would never be seen.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, left := natstest.WorkQueueSettled(ctx, b.js, pathupdate.TraceStream, isUnpartitioned)
		if ok && left > 0 {
			t.Logf("the trace stream kept %d messages every consumer counts as acked (nats-server, after a node restart)", left)
		}
		return ok
	}
	for !settled() {
		select {
		case <-ctx.Done():
			t.Fatalf("trace stream not settled within %s:\n%s%s", timeout, describeTrace(b.js), describe())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isUnpartitioned names the consumer of unpartitioned subjects: it is
// given no events, so its ack floor stays 0.
func isUnpartitioned(consumer string) bool {
	return consumer == pathupdate.UnpartitionedConsumer(worker.ConsumerDefault)
}

// describeTrace says what is left in the trace stream and where each
// consumer stands, so a stuck drain names its cause: a message no consumer
// holds, a consumer whose ack floor passed a message the stream kept, or a
// replica that disagrees.
func describeTrace(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return fmt.Sprintf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Sprintf("stream info: %v", err)
	}
	fmt.Fprintf(&out, "stream: msgs=%d first=%d last=%d deleted=%d\n", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.State.NumDeleted)
	if ci := info.Cluster; ci != nil {
		fmt.Fprintf(&out, "  leader=%s", ci.Leader)
		for _, r := range ci.Replicas {
			fmt.Fprintf(&out, " replica=%s current=%v lag=%d", r.Name, r.Current, r.Lag)
		}
		out.WriteString("\n")
	}
	seq := info.State.FirstSeq
	for shown := 0; shown < 5 && seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		shown++
		fmt.Fprintf(&out, "  left: seq=%d subject=%s\n", m.Sequence, m.Subject)
	}
	for name := range st.ConsumerNames(ctx).Name() {
		c, err := st.Consumer(ctx, name)
		if err != nil {
			fmt.Fprintf(&out, "consumer %s: %v\n", name, err)
			continue
		}
		ci := c.CachedInfo()
		fmt.Fprintf(&out, "consumer %s: pending=%d ack_pending=%d redelivered=%d delivered=%d ack_floor=%d waiting=%d",
			name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumWaiting)
		if ci.Cluster != nil {
			fmt.Fprintf(&out, " leader=%s", ci.Cluster.Leader)
		}
		out.WriteString("\n")
	}
	return out.String()
}

// checkDelivered asserts every event of trs reached the sandbox, in order
// per waybill, and returns how many deliveries were repeats.
func (b *bundle) checkDelivered(t *testing.T, trs [][]pathupdate.Event) (dups int) {
	t.Helper()
	for _, tr := range trs {
		got := b.sb.Delivered(tr[0].WaybillID)
		next := 0 // index of the next event not yet seen
		for _, c := range got {
			switch {
			case next < len(tr) && c.ActionMsg == tr[next].ActionMsg:
				next++
			case next > 0 && c.ActionMsg == tr[next-1].ActionMsg:
				dups++ // at least once: the event just delivered, again
			default:
				t.Fatalf("waybill %s: delivery %q out of order (expected %d of %d next)", tr[0].WaybillID, c.ActionMsg, next, len(tr))
			}
		}
		if next != len(tr) {
			t.Fatalf("waybill %s: %d of %d events delivered", tr[0].WaybillID, next, len(tr))
		}
	}
	return dups
}

// deadLetters reads the dead-letter stream whole.
func (b *bundle) deadLetters(t *testing.T) []deadletter.Record {
	t.Helper()
	ctx := context.Background()
	st, err := b.js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []deadletter.Record
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		r, err := deadletter.FromRawMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// settledSignal is an Observer that counts settled events, so a test waits
// for the n-th one on a channel instead of polling.
type settledSignal struct {
	worker.NopObserver
	mu      sync.Mutex
	n       int
	waiters map[int]chan struct{}
}

func (s *settledSignal) Settled(worker.Settlement) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if ch, ok := s.waiters[s.n]; ok {
		close(ch)
		delete(s.waiters, s.n)
	}
}

// reached is closed once n events have settled.
func (s *settledSignal) reached(n int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.n >= n {
		close(ch)
		return ch
	}
	if s.waiters == nil {
		s.waiters = make(map[int]chan struct{})
	}
	if old, ok := s.waiters[n]; ok {
		return old
	}
	s.waiters[n] = ch
	return ch
}

// waitFor fails the test unless ch is closed within timeout.
func waitFor(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
