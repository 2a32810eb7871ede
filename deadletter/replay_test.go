package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// env is a real JetStream server with the streams, the sandbox over real
// HTTP, a worker delivering to it, and a Store.
type env struct {
	srv   *natsserver.Server
	js    jetstream.JetStream
	sb    *sandbox.Server
	pub   *pathupdate.Publisher
	store *deadletter.Store
}

func setup(t *testing.T, cfg deadletter.StoreConfig) *env {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{Seed: 1})
	t.Cleanup(sb.Close)
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{Timeout: 5 * time.Second})
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
		Retry:   retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 50},
		Breaker: retry.BreakerConfig{OpenInitial: 50 * time.Millisecond, OpenMax: 500 * time.Millisecond},
		Logger:  testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger(t)
	store, err := deadletter.NewStore(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, js: js, sb: sb, pub: pub, store: store}
}

func testLogger(t *testing.T) zerolog.Logger {
	if os.Getenv("PATHUPDATE_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// traces makes n waybills of k events each, carrying token tok.
func traces(prefix string, n, k int, tok string) [][]pathupdate.Event {
	out := make([][]pathupdate.Event, n)
	for i := range n {
		for j := range k {
			out[i] = append(out[i], pathupdate.Event{
				Token:      tok,
				WaybillID:  fmt.Sprintf("%s%03d", prefix, i),
				ActionTime: 1_767_225_600 + int64(j),
				ActionType: pathupdate.ActionInTransit,
				ActionMsg:  fmt.Sprintf("%s%03d step %d", prefix, i, j),
			})
		}
	}
	return out
}

// publish sends step j of every waybill before step j+1 of any, as a
// dispatch system with many parcels does.
func (e *env) publish(t *testing.T, trs ...[][]pathupdate.Event) {
	t.Helper()
	var all [][]pathupdate.Event
	for _, tr := range trs {
		all = append(all, tr...)
	}
	for j := 0; ; j++ {
		more := false
		for _, tr := range all {
			if j < len(tr) {
				more = true
				if _, err := e.pub.Publish(testCtx(t), tr[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !more {
			return
		}
	}
}

func (e *env) register(trs [][]pathupdate.Event, tok string) {
	for _, tr := range trs {
		e.sb.AddOrder(tr[0].WaybillID, tok)
	}
}

// settle waits until the worker has taken everything from the trace
// stream (a work queue: an acked event leaves it) and the dead-letter
// stream holds want records. It polls: nothing signals "all done".
func (e *env) settle(t *testing.T, want int) {
	t.Helper()
	ctx := testCtx(t)
	var trace, dead uint64
	for {
		trace, dead = e.streamMsgs(t, pathupdate.TraceStream), e.streamMsgs(t, pathupdate.DeadLetterStream)
		if trace == 0 && dead == uint64(want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not settled: %d events in the trace stream, %d dead letters (want 0 and %d)", trace, dead, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *env) streamMsgs(t *testing.T, name string) uint64 {
	t.Helper()
	st, err := e.js.Stream(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// exactlyOnce asserts the sandbox accepted every event of trs exactly
// once, in order per waybill, with token tok.
func (e *env) exactlyOnce(t *testing.T, trs [][]pathupdate.Event, tok string) {
	t.Helper()
	for _, tr := range trs {
		got := e.sb.Delivered(tr[0].WaybillID)
		var msgs []string
		for _, c := range got {
			msgs = append(msgs, c.ActionMsg)
			if c.Token != tok {
				t.Errorf("waybill %s: delivered with token %q, want %q", tr[0].WaybillID, c.Token, tok)
			}
		}
		var want []string
		for _, ev := range tr {
			want = append(want, ev.ActionMsg)
		}
		if strings.Join(msgs, "|") != strings.Join(want, "|") {
			t.Fatalf("waybill %s delivered\n %q\nwant each once, in order\n %q", tr[0].WaybillID, msgs, want)
		}
	}
}

func (e *env) list(t *testing.T, f deadletter.Filter) []deadletter.Record {
	t.Helper()
	var out []deadletter.Record
	if err := e.store.List(testCtx(t), f, func(r deadletter.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReplayKeepsOrderPerWaybill(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{Concurrency: 4})
	unknown := traces("U", 12, 6, "tok-u") // not registered yet: 40199
	good := traces("G", 3, 6, "tok-g")
	e.register(good, "tok-g")
	e.publish(t, unknown, good)
	e.settle(t, 72)
	e.exactlyOnce(t, good, "tok-g")

	e.register(unknown, "tok-u") // the fix: the orders now exist
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{})
	if err != nil || res.Replayed != 72 || res.Duplicates != 0 || res.Skipped != 0 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	e.settle(t, 0)
	e.exactlyOnce(t, unknown, "tok-u")
	e.exactlyOnce(t, good, "tok-g")
}

func TestReplayOfASubsetLeavesTheRestUntouched(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	unknown := traces("U", 4, 5, "tok-u")
	wrong := traces("B", 3, 5, "wrong") // registered with another token: 9300507
	e.register(wrong, "right")
	e.publish(t, unknown, wrong)
	e.settle(t, 35)
	before := e.list(t, deadletter.Filter{ErrCode: new(pathupdate.ErrcodeIncorrectToken)})
	if len(before) != 15 {
		t.Fatalf("%d 9300507 dead letters, want 15", len(before))
	}

	e.register(unknown, "tok-u")
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{ErrCode: new(pathupdate.ErrcodeWaybillNotFound)}, deadletter.ReplayOptions{})
	if err != nil || res.Replayed != 20 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	e.settle(t, 15)
	e.exactlyOnce(t, unknown, "tok-u")
	after := e.list(t, deadletter.Filter{})
	if len(after) != len(before) {
		t.Fatalf("%d dead letters left, want the %d others", len(after), len(before))
	}
	for i := range after {
		a, b := after[i], before[i]
		if a.Seq != b.Seq || string(a.Event) != string(b.Event) || a.ErrCode != b.ErrCode || a.Replays != 0 || !a.FailedAt.Equal(b.FailedAt) {
			t.Fatalf("record changed\n got %+v\nwant %+v", a, b)
		}
	}
	for _, tr := range wrong {
		if n := len(e.sb.Delivered(tr[0].WaybillID)); n != 0 {
			t.Fatalf("%s: %d deliveries of an event that was not replayed", tr[0].WaybillID, n)
		}
	}
}

// TestReplayInterruptedThenRunAgain cancels a replay at a random point
// (several seeds) and runs it again: every event is delivered exactly
// once, in order.
func TestReplayInterruptedThenRunAgain(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			e := setup(t, deadletter.StoreConfig{Concurrency: 1 + int(seed%4)})
			trs := traces("K", 8, 6, "tok")
			e.publish(t, trs)
			e.settle(t, 48)
			e.register(trs, "tok")

			stopAt := 1 + rand.New(rand.NewPCG(seed, seed)).IntN(48)
			ctx, cancel := context.WithCancel(testCtx(t))
			first, err := e.store.Replay(ctx, deadletter.Filter{}, deadletter.ReplayOptions{Progress: func(p deadletter.ReplayProgress) {
				if p.Done == stopAt {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) && !(err == nil && stopAt == 48) {
				t.Fatalf("interrupted replay: %+v, %v", first, err)
			}
			if first.Replayed < stopAt {
				t.Fatalf("interrupted replay counted %d, but %d were reported", first.Replayed, stopAt)
			}
			second, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{})
			if err != nil || first.Replayed+second.Replayed != 48 {
				t.Fatalf("second replay: %+v, %v (first %+v)", second, err, first)
			}
			e.settle(t, 0)
			e.exactlyOnce(t, trs, "tok")
			t.Logf("stopped after %d: first run %+v, second %+v", stopAt, first, second)
		})
	}
}

// TestReplayKilledAfterPublishBeforeRemoval: a replay that died between
// the PubAck and the removal left the records in place; the next run
// publishes nothing new for them and removes them.
func TestReplayKilledAfterPublishBeforeRemoval(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	trs := traces("P", 1, 3, "tok")
	e.publish(t, trs)
	e.settle(t, 3)
	e.register(trs, "tok")
	recs := e.list(t, deadletter.Filter{})
	for _, r := range recs[:2] { // what the dead run had published
		m := &nats.Msg{Subject: pathupdate.TraceSubject(r.WaybillID), Data: r.Event, Header: nats.Header{}}
		m.Header.Set(deadletter.ReplaysHeader, "1")
		if _, err := e.js.PublishMsg(testCtx(t), m, jetstream.WithMsgID(deadletter.ReplayMsgID(r))); err != nil {
			t.Fatal(err)
		}
	}
	e.settle(t, 3) // delivered (and gone from the work queue), records still there
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{})
	if err != nil || res.Replayed != 3 || res.Duplicates != 2 {
		t.Fatalf("replay: %+v, %v; want 3 replayed, 2 of them duplicates", res, err)
	}
	e.settle(t, 0)
	e.exactlyOnce(t, trs, "tok")
}

func TestReplaySetToken(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	s1 := traces("S", 1, 4, "wrong")
	s2 := traces("T", 1, 2, "wrong")
	e.sb.AddOrder(s1[0][0].WaybillID, "right-1")
	e.sb.AddOrder(s2[0][0].WaybillID, "right-2")
	e.publish(t, s1, s2)
	e.settle(t, 6)
	if st, err := e.store.Stats(testCtx(t), deadletter.Filter{}); err != nil || st.ByErrCode[pathupdate.ErrcodeIncorrectToken] != 6 {
		t.Fatalf("stats %+v, %v; want 6 × 9300507", st, err)
	}

	_, err := e.store.Replay(testCtx(t), deadletter.Filter{ErrCode: new(pathupdate.ErrcodeIncorrectToken)}, deadletter.ReplayOptions{SetToken: "right-1"})
	if !errors.Is(err, deadletter.ErrSetTokenManyWaybills) || !strings.Contains(err.Error(), "--waybill") || !strings.Contains(err.Error(), "--all-waybills") {
		t.Fatalf("set-token across waybills: %v", err)
	}
	secret := strings.Repeat("s", pathupdate.MaxTokenLen+1)
	_, err = e.store.Replay(testCtx(t), deadletter.Filter{Waybill: "S000"}, deadletter.ReplayOptions{SetToken: secret})
	if err == nil || !strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), secret) {
		t.Fatalf("too long a token: %v", err)
	}

	res, err := e.store.Replay(testCtx(t), deadletter.Filter{Waybill: "S000"}, deadletter.ReplayOptions{SetToken: "right-1"})
	if err != nil || res.Replayed != 4 {
		t.Fatalf("replay S000: %+v, %v", res, err)
	}
	e.settle(t, 2)
	e.exactlyOnce(t, s1, "right-1")

	res, err = e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{SetToken: "right-2", AllowManyWaybills: true})
	if err != nil || res.Replayed != 2 {
		t.Fatalf("replay with AllowManyWaybills: %+v, %v", res, err)
	}
	e.settle(t, 0)
	e.exactlyOnce(t, s2, "right-2")
}

func TestReplayedEventThatFailsAgainKeepsItsHistory(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	trs := traces("H", 1, 2, "tok")
	e.publish(t, trs)
	e.settle(t, 2)
	for round := 1; round <= 2; round++ {
		res, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{})
		if err != nil || res.Replayed != 2 {
			t.Fatalf("round %d: %+v, %v", round, res, err)
		}
		e.settle(t, 2) // still unknown to WeChat: dead-lettered again
		recs := e.list(t, deadletter.Filter{})
		for i, r := range recs {
			if r.Replays != round || r.ErrCode != pathupdate.ErrcodeWaybillNotFound || !strings.Contains(string(r.Event), fmt.Sprintf("step %d", i)) {
				t.Fatalf("round %d, record %d: %+v; want Replays %d, the events in order", round, i, r, round)
			}
		}
	}
	e.register(trs, "tok")
	if _, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	e.settle(t, 0)
	e.exactlyOnce(t, trs, "tok")
}

func TestReplayDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	trs := traces("D", 2, 3, "wrong")
	e.register(trs, "right")
	e.publish(t, trs)
	e.settle(t, 6)
	dl, err := e.js.Stream(testCtx(t), pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := e.js.Stream(testCtx(t), pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	dlBefore, trBefore, calls := dl.CachedInfo().State, tr.CachedInfo().State, e.sb.Stats().UpdateCalls

	var seen []deadletter.ReplayProgress
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{Waybill: "D001"}, deadletter.ReplayOptions{
		DryRun: true, SetToken: "right", Progress: func(p deadletter.ReplayProgress) { seen = append(seen, p) },
	})
	if err != nil || !res.DryRun || res.Replayed != 3 || len(seen) != 3 {
		t.Fatalf("dry run: %+v, %v, %d reported", res, err, len(seen))
	}
	for _, p := range seen {
		if p.Subject != "logistics.trace.D001" || p.MsgID != deadletter.ReplayMsgID(p.Record) || p.TraceSeq != 0 ||
			!strings.Contains(string(p.Event), `"token":"right"`) || !strings.Contains(string(p.Record.Event), `"token":"wrong"`) {
			t.Fatalf("dry-run report %+v (event %s)", p, p.Event)
		}
	}
	if res, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{DryRun: true}); err != nil || res.Replayed != 6 {
		t.Fatalf("dry run of all: %+v, %v", res, err)
	}

	dlAfter, err := dl.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	trAfter, err := tr.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if dlAfter.State.Msgs != dlBefore.Msgs || dlAfter.State.FirstSeq != dlBefore.FirstSeq || dlAfter.State.LastSeq != dlBefore.LastSeq ||
		trAfter.State.LastSeq != trBefore.LastSeq || e.sb.Stats().UpdateCalls != calls {
		t.Fatalf("dry run changed something: dead letters %+v -> %+v, trace last seq %d -> %d, calls %d -> %d",
			dlBefore, dlAfter.State, trBefore.LastSeq, trAfter.State.LastSeq, calls, e.sb.Stats().UpdateCalls)
	}
}
