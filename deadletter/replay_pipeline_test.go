package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// bare is a real JetStream server with the streams and a Store, and no
// worker: what a replay publishes stays in the trace stream to be read.
type bare struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store *deadletter.Store
}

func setupBare(t testing.TB, cfg deadletter.StoreConfig) *bare {
	t.Helper()
	nc, js := natstest.Connect(t, natstest.Start(t))
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	store, err := deadletter.NewStore(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bare{nc: nc, js: js, store: store}
}

// setupBacklog is setupBare with backlog(prefix, n, k, seed) written,
// returned with the records' sequences.
func setupBacklog(t *testing.T, cfg deadletter.StoreConfig, prefix string, n, k int, seed uint64) (context.Context, *bare, []deadletter.Record) {
	t.Helper()
	ctx := testCtx(t)
	cfg.Logger = testLogger(t)
	b := setupBare(t, cfg)
	return ctx, b, writeRecords(ctx, t, b.js, backlog(prefix, n, k, seed))
}

// backlog makes k dead letters for each of n waybills, the waybills mixed
// at random (seed) but each waybill's steps in order, as failures of many
// parcels arrive. Some carry a trace context, some an earlier replay.
func backlog(prefix string, n, k int, seed uint64) []deadletter.Record {
	turns := make([]int, 0, n*k)
	for w := range n {
		for range k {
			turns = append(turns, w)
		}
	}
	rand.New(rand.NewPCG(seed, seed)).Shuffle(len(turns), func(i, j int) { turns[i], turns[j] = turns[j], turns[i] })
	step := make([]int, n)
	failed := time.Now()
	recs := make([]deadletter.Record, len(turns))
	for i, w := range turns {
		waybill := fmt.Sprintf("%s%04d", prefix, w)
		ev := pathupdate.Event{Token: "tok", WaybillID: waybill, ActionTime: 1_767_225_600 + int64(step[w]),
			ActionType: pathupdate.ActionInTransit, ActionMsg: fmt.Sprintf("%s step %d", waybill, step[w])}
		step[w]++
		originalSeq := uint64(i + 1) // the dead-letter stream dedups on it
		r := deadletter.Record{Event: ev.Encode(), WaybillID: waybill, Reason: deadletter.ReasonRejected,
			ErrCode: pathupdate.ErrcodeWaybillNotFound, ErrMsg: "waybill not found", Attempts: 1,
			OriginalSubject: "0.logistics.trace." + waybill, OriginalSeq: originalSeq, Replays: w % 3, FailedAt: failed}
		if w%2 == 0 {
			r.TraceParent = fmt.Sprintf("00-%032x-%016x-01", w+1, originalSeq)
		}
		recs[i] = r
	}
	return recs
}

// writeRecords stores recs in the dead-letter stream in their order, with
// raw async publishes (the Writer would wait for each PubAck), and
// returns them with their dead-letter sequences.
func writeRecords(ctx context.Context, t testing.TB, js jetstream.JetStream, recs []deadletter.Record) []deadletter.Record {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		f, err := js.PublishMsgAsync(r.Msg(), jetstream.WithExpectStream(pathupdate.DeadLetterStream))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
		if (i+1)%1000 == 0 || i == len(recs)-1 { // within the handle's async limit
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
	}
	out := slices.Clone(recs)
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			out[i].Seq = ack.Sequence
		case err := <-f.Err():
			t.Fatalf("write dead letter %d: %v", i, err)
		}
	}
	return out
}

// stored is one message of the trace stream, or one publish seen on the
// wire.
type stored struct {
	seq                             uint64
	waybill, msgID, replays, parent string
	event                           pathupdate.Event
}

func storedOf(t testing.TB, subject string, h nats.Header, data []byte) stored {
	t.Helper()
	ev, err := pathupdate.DecodeEvent(data)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	// The last token: the stream stores a trace subject under its partition.
	return stored{waybill: subject[strings.LastIndexByte(subject, '.')+1:], msgID: h.Get(jetstream.MsgIDHeader),
		replays: h.Get(deadletter.ReplaysHeader), parent: h.Get(pathupdate.TraceParentHeader), event: ev}
}

// traceStream reads the whole trace stream, in stream order, message by
// message (a work queue admits no ordered consumer, and a consumer's ack
// would remove what it read).
func traceStream(ctx context.Context, t testing.TB, js jetstream.JetStream) []stored {
	t.Helper()
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	out := make([]stored, 0, state.Msgs)
	for seq := state.FirstSeq; seq <= state.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("trace seq %d: %v", seq, err)
		}
		s := storedOf(t, m.Subject, m.Header, m.Data)
		s.seq = seq
		out = append(out, s)
	}
	return out
}

// byWaybill is each waybill's records, in the order of recs.
func byWaybill(recs []deadletter.Record) map[string][]deadletter.Record {
	out := map[string][]deadletter.Record{}
	for _, r := range recs {
		out[r.WaybillID] = append(out[r.WaybillID], r)
	}
	return out
}

// checkReplayed asserts that every message of trace is the replay of a
// record of recs (id, replay count, trace context, event) and that each
// waybill's messages are its records' first ones, in their order.
func checkReplayed(t testing.TB, recs []deadletter.Record, trace []stored) {
	t.Helper()
	byID := map[string]deadletter.Record{}
	for _, r := range recs {
		byID[deadletter.ReplayMsgID(r)] = r
	}
	perWaybill := byWaybill(recs)
	next := map[string]int{}
	for _, m := range trace {
		r, ok := byID[m.msgID]
		if !ok {
			t.Fatalf("trace seq %d: message id %q is no record's replay id", m.seq, m.msgID)
		}
		if m.waybill != r.WaybillID || m.replays != strconv.Itoa(r.Replays+1) || m.parent != r.TraceParent || string(m.event.Encode()) != string(r.Event) {
			t.Fatalf("trace seq %d: %+v, want the replay of %+v", m.seq, m, r)
		}
		want := perWaybill[m.waybill][next[m.waybill]]
		if want.Seq != r.Seq {
			t.Fatalf("waybill %s: trace seq %d is dead letter %d (%s), want dead letter %d (%s) next: out of order or twice",
				m.waybill, m.seq, r.Seq, m.event.ActionMsg, want.Seq, want.Event)
		}
		next[m.waybill]++
	}
}

// TestReplayOrderAcrossManyWaybills replays 2,000 dead letters of 200
// waybills, mixed: each waybill's events reach the trace stream in order,
// each once, with its replay id, replay count and trace context; every
// record is reported once, one call at a time, after its event is stored
// and the record is gone.
func TestReplayOrderAcrossManyWaybills(t *testing.T) {
	t.Parallel()
	ctx, b, recs := setupBacklog(t, deadletter.StoreConfig{Concurrency: 3}, "M", 200, 10, 1)
	dl, err := b.js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := b.js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}

	calls := 0 // not atomic: Progress is never called concurrently (-race)
	res, err := b.store.Replay(ctx, deadletter.Filter{}, deadletter.ReplayOptions{Progress: func(p deadletter.ReplayProgress) {
		calls++
		if p.Done != calls || p.Skipped != nil || p.TraceSeq == 0 {
			t.Errorf("report %d: %+v", calls, p)
		}
		if calls%25 != 0 {
			return
		}
		// Reported: stored in the trace stream, and removed.
		if _, err := dl.GetMsg(ctx, p.Record.Seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("dead letter %d reported replayed but still there (%v)", p.Record.Seq, err)
		}
		m, err := tr.GetMsg(ctx, p.TraceSeq)
		if err != nil || m.Header.Get(jetstream.MsgIDHeader) != deadletter.ReplayMsgID(p.Record) {
			t.Errorf("dead letter %d reported at trace seq %d, which holds %v (%v)", p.Record.Seq, p.TraceSeq, m, err)
		}
	}})
	if err != nil || res.Replayed != len(recs) || res.Duplicates != 0 || res.Skipped != 0 || calls != len(recs) {
		t.Fatalf("replay: %+v, %v, %d reports; want %d replayed", res, err, calls, len(recs))
	}
	trace := traceStream(ctx, t, b.js)
	if len(trace) != len(recs) {
		t.Fatalf("trace stream holds %d messages, want %d", len(trace), len(recs))
	}
	checkReplayed(t, recs, trace)
	if n, err := b.store.Count(ctx, deadletter.Filter{}); err != nil || n != 0 {
		t.Fatalf("%d dead letters left (%v)", n, err)
	}
}

// TestReplayHaltsAtAFailedPublish: the trace stream refuses every event
// after its first 300 (full, discard new). The replay stops at the first
// refusal: every waybill's stored events are its first ones in order; at
// most the publishes then in flight follow it, and no waybill has a
// publish after one of its own that failed; exactly the stored events'
// records are removed and counted.
func TestReplayHaltsAtAFailedPublish(t *testing.T) {
	t.Parallel()
	const total, room = 2000, 300
	ctx, b, recs := setupBacklog(t, deadletter.StoreConfig{}, "F", 200, total/200, 2)
	tr, err := b.js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tr.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = room, jetstream.DiscardNew
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Every publish attempt, stored or refused, as the server routes it.
	wire := make(chan *nats.Msg, total+1)
	sub, err := b.nc.ChanSubscribe(pathupdate.TraceSubjectPrefix+">", wire)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	res, err := b.store.Replay(ctx, deadletter.Filter{}, deadletter.ReplayOptions{})
	if err == nil || !strings.Contains(err.Error(), "replay dead letter") || errors.Is(err, context.Canceled) {
		t.Fatalf("replay into a full stream: %+v, %v; want the first refused publish", res, err)
	}
	t.Logf("replay: %+v, %v", res, err)
	if res.Replayed != room {
		t.Fatalf("replayed %d, want the %d the stream took", res.Replayed, room)
	}
	trace := traceStream(ctx, t, b.js)
	if len(trace) != room {
		t.Fatalf("trace stream holds %d messages, want %d", len(trace), room)
	}
	checkReplayed(t, recs, trace)

	// The records left are exactly those whose event was not stored.
	storedIDs := map[string]bool{}
	for _, m := range trace {
		storedIDs[m.msgID] = true
	}
	var left []string
	if err := b.store.List(ctx, deadletter.Filter{}, func(r deadletter.Record) error {
		left = append(left, deadletter.ReplayMsgID(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) != total-room {
		t.Fatalf("%d dead letters left, want %d", len(left), total-room)
	}
	for _, id := range left {
		if storedIDs[id] {
			t.Fatalf("%s was stored in the trace stream but its dead letter is still there", id)
		}
	}

	// What went on the wire: the stored ones, then at most what was in
	// flight when the first refusal came back; per waybill, its records in
	// order, and nothing after one of its own that failed.
	if err := b.nc.Flush(); err != nil { // every attempt was routed before its PubAck; the PONG comes after them
		t.Fatal(err)
	}
	attempts := len(wire)
	if attempts > room+pathupdate.DefaultMaxPending || attempts >= total {
		t.Fatalf("%d publishes attempted: more than the %d stored and %d in flight, so the replay went on after the first failure",
			attempts, room, pathupdate.DefaultMaxPending)
	}
	var seen []stored
	for range attempts {
		m := <-wire
		seen = append(seen, storedOf(t, m.Subject, m.Header, m.Data))
	}
	failedBefore := map[string]string{}
	next := map[string]int{}
	perWaybill := byWaybill(recs)
	for _, m := range seen {
		if id, ok := failedBefore[m.waybill]; ok {
			t.Fatalf("waybill %s: %s published after %s failed", m.waybill, m.msgID, id)
		}
		if want := perWaybill[m.waybill][next[m.waybill]]; deadletter.ReplayMsgID(want) != m.msgID {
			t.Fatalf("waybill %s: published %s, want %s next", m.waybill, m.msgID, deadletter.ReplayMsgID(want))
		}
		next[m.waybill]++
		if !storedIDs[m.msgID] {
			failedBefore[m.waybill] = m.msgID
		}
	}
	t.Logf("%d publishes attempted, %d stored", attempts, room)
}

// TestReplayRemovalFailureStopsIt: the dead-letter stream refuses deletes.
// The replay fails saying so; nothing counts as replayed and every record
// stays, while what was published is in the trace stream once, in order
// per waybill.
func TestReplayRemovalFailureStopsIt(t *testing.T) {
	t.Parallel()
	ctx, b, recs := setupBacklog(t, deadletter.StoreConfig{}, "D", 50, 10, 3)
	dl, err := b.js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dl.CachedInfo().Config
	cfg.DenyDelete = true
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	res, err := b.store.Replay(ctx, deadletter.Filter{}, deadletter.ReplayOptions{Progress: func(p deadletter.ReplayProgress) {
		t.Errorf("reported %+v: nothing was removed", p)
	}})
	if err == nil || !strings.Contains(err.Error(), "but not removed") || res.Replayed != 0 {
		t.Fatalf("replay: %+v, %v; want the first failed removal, nothing replayed", res, err)
	}
	if n, err := b.store.Count(ctx, deadletter.Filter{}); err != nil || n != len(recs) {
		t.Fatalf("%d dead letters left (%v), want all %d", n, err, len(recs))
	}
	trace := traceStream(ctx, t, b.js)
	if len(trace) == 0 {
		t.Fatal("nothing published, but a removal failed")
	}
	checkReplayed(t, recs, trace)
}

// TestReplayCancelledRemovesWhatItPublished: cancelled at its first
// report, a replay returns ctx's error, and every record whose event it
// published is removed and counted: none is left published but in place.
func TestReplayCancelledRemovesWhatItPublished(t *testing.T) {
	t.Parallel()
	ctx, b, recs := setupBacklog(t, deadletter.StoreConfig{Concurrency: 2}, "X", 100, 10, 4)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reported := 0
	res, err := b.store.Replay(rctx, deadletter.Filter{}, deadletter.ReplayOptions{Progress: func(deadletter.ReplayProgress) {
		reported++
		cancel()
	}})
	if !errors.Is(err, context.Canceled) || res.Replayed != reported {
		t.Fatalf("cancelled replay: %+v, %v, %d reported", res, err, reported)
	}
	trace := traceStream(ctx, t, b.js)
	checkReplayed(t, recs, trace)
	if len(trace) != res.Replayed {
		t.Fatalf("%d events published, %d records counted as replayed", len(trace), res.Replayed)
	}
	if n, err := b.store.Count(ctx, deadletter.Filter{}); err != nil || n != len(recs)-len(trace) {
		t.Fatalf("%d dead letters left (%v), want the %d not published", n, err, len(recs)-len(trace))
	}
	t.Logf("cancelled: %d of %d replayed", res.Replayed, len(recs))
}
