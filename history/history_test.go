package history_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

func setup(t *testing.T, sc history.StreamConfig) jetstream.JetStream {
	t.Helper()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := history.EnsureStream(ctx, js, sc); err != nil {
		t.Fatal(err)
	}
	return js
}

func newWriter(t *testing.T, js jetstream.JetStream, cfg history.WriterConfig) *history.Writer {
	t.Helper()
	w, err := history.NewWriter(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func flush(t *testing.T, w *history.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestWriterStoresEveryRecordByWaybill(t *testing.T) {
	t.Parallel()
	js := setup(t, history.StreamConfig{})
	w := newWriter(t, js, history.WriterConfig{Batch: 7})
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for i := range 100 {
		w.Add(history.Record{State: history.Delivered, WaybillID: fmt.Sprintf("W%d", i%10), Seq: uint64(i + 1), At: at})
	}
	flush(t, w)
	if w.Written() != 100 || w.Dropped() != 0 {
		t.Fatalf("written %d, dropped %d; want 100, 0", w.Written(), w.Dropped())
	}
	tl, err := history.NewStore(js, nil).Timeline(context.Background(), "W3")
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Steps) != 10 {
		t.Fatalf("W3 has %d steps, want 10", len(tl.Steps))
	}
	for i, s := range tl.Steps {
		if s.Seq != uint64(4+10*i) || s.State != history.Delivered {
			t.Fatalf("step %d: %+v, want delivered seq %d", i, s, 4+10*i)
		}
	}
}

// TestWriterNeverBlocks: with the stream gone and the buffer full, Add
// returns at once and the records are counted as dropped.
func TestWriterNeverBlocks(t *testing.T) {
	t.Parallel()
	js := setup(t, history.StreamConfig{})
	if err := js.DeleteStream(context.Background(), history.Stream); err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	w := newWriter(t, js, history.WriterConfig{Buffer: 4, Batch: 2, OnDropped: func(n int) { dropped.Add(int64(n)) }})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			w.Add(history.Record{State: history.Delivered, WaybillID: "W1", Seq: uint64(i + 1), At: time.Now()})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Add blocked")
	}
	flush(t, w)
	if w.Written() != 0 || w.Dropped() != 1000 || dropped.Load() != 1000 {
		t.Fatalf("written %d, dropped %d (observed %d); want 0, 1000", w.Written(), w.Dropped(), dropped.Load())
	}
}

func TestRetentionDropsOldRecords(t *testing.T) {
	t.Parallel()
	js := setup(t, history.StreamConfig{MaxAge: time.Second, PerWaybill: 3})
	w := newWriter(t, js, history.WriterConfig{})
	for i := range 5 {
		w.Add(history.Record{State: history.Delivered, WaybillID: "W1", Seq: uint64(i + 1), At: time.Now()})
	}
	flush(t, w)
	st := history.NewStore(js, nil)
	tl, err := st.Timeline(context.Background(), "W1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Steps) != 3 || tl.Steps[0].Seq != 3 {
		t.Fatalf("per-waybill cap 3: %d steps starting at %+v, want the newest 3", len(tl.Steps), tl.Steps)
	}
	if tl.Since.IsZero() {
		t.Fatal("Since is zero with a MaxAge")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		tl, err = st.Timeline(context.Background(), "W1")
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Steps) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records older than MaxAge 1s still there after 15 s: %+v", tl.Steps)
		}
		time.Sleep(100 * time.Millisecond) // the server's expiry runs on its own clock
	}
}

func TestTimelineAssemblesTheStory(t *testing.T) {
	t.Parallel()
	js := setup(t, history.StreamConfig{})
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	ev := func(msg string) pathupdate.Event {
		return pathupdate.Event{Token: "token-abcd1234", WaybillID: "SF1", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: msg}
	}
	// A dead letter the history does not know (written before history).
	dl := deadletter.Record{Event: []byte(`{"token":"t","waybill_id":"SF1","action_time":1,"action_type":100001,"action_msg":"old"}`),
		WaybillID: "SF1", Reason: deadletter.ReasonRejected, ErrCode: 40199, ErrMsg: "waybill not found", Attempts: 1,
		OriginalSubject: "3.logistics.trace.SF1", OriginalSeq: 7, FailedAt: t0}
	if err := deadletter.NewWriter(js, deadletter.WriterConfig{}).Write(ctx, dl); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, js, history.WriterConfig{})
	w.Add(history.Record{State: history.Delivered, Seq: 8, Attempts: 3, At: t0.Add(time.Minute)}.FromEvent(ev("picked up")))
	w.Add(history.Record{State: history.Retrying, Seq: 9, Attempts: 1, ErrCode: -1, At: t0.Add(2 * time.Minute), NextAttempt: t0.Add(3 * time.Minute)}.FromEvent(ev("out for delivery")))
	w.Add(history.Record{State: history.Retrying, Seq: 9, Attempts: 2, ErrCode: -1, At: t0.Add(4 * time.Minute), NextAttempt: t0.Add(5 * time.Minute)}.FromEvent(ev("out for delivery")))
	flush(t, w)
	// A new event waits in the trace stream (sequence 2, after another
	// waybill's).
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, pathupdate.Event{Token: "x", WaybillID: "OTHER", ActionTime: 1, ActionType: pathupdate.ActionPickedUp, ActionMsg: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, ev("signed")); err != nil {
		t.Fatal(err)
	}

	tl, err := history.NewStore(js, nil).Timeline(ctx, "SF1")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, s := range tl.Steps {
		got += fmt.Sprintf("%d %s a%d e%d dl%d|", s.Seq, s.State, s.Attempts, s.ErrCode, s.DeadLetterSeq)
	}
	// Event 9's retries are not shown: it is neither settled nor in the
	// trace stream (a record of a later retry or its settlement was lost).
	// The waiting event is stored now, so it comes last.
	want := "7 dead_lettered a1 e40199 dl1|8 delivered a3 e0 dl0|2 waiting a0 e0 dl0|"
	if got != want {
		t.Fatalf("timeline\n got %s\nwant %s", got, want)
	}
}

func TestTimelineShowsRetryingEvent(t *testing.T) {
	t.Parallel()
	js := setup(t, history.StreamConfig{})
	ctx := context.Background()
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := pathupdate.Event{Token: "token-abcd1234", WaybillID: "SF2", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "m"}
	ack, err := pub.Publish(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	w := newWriter(t, js, history.WriterConfig{})
	w.Add(history.Record{State: history.Retrying, Seq: ack.Seq, Attempts: 2, ErrCode: -1, ErrMsg: "system error", At: time.Now(), NextAttempt: next}.FromEvent(ev))
	flush(t, w)
	tl, err := history.NewStore(js, nil).Timeline(ctx, "SF2")
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Steps) != 1 {
		t.Fatalf("%d steps, want 1: %+v", len(tl.Steps), tl.Steps)
	}
	if s := tl.Steps[0]; s.State != history.Retrying || s.Attempts != 2 || s.ErrCode != -1 || !s.NextAttempt.Equal(next) || s.ActionMsg != "m" {
		t.Fatalf("step %+v, want retrying after 2 attempts, errcode -1, next %s", s, next)
	}
}

func TestTimelineRefusals(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	st := history.NewStore(js, nil)
	for _, bad := range []string{"", "a.b", "*", ">", "Üñ", string(make([]byte, 65))} {
		if _, err := st.Timeline(context.Background(), bad); !errors.Is(err, history.ErrInvalidWaybill) {
			t.Errorf("Timeline(%q) = %v, want ErrInvalidWaybill", bad, err)
		}
	}
	if _, err := st.Timeline(context.Background(), "W1"); !errors.Is(err, history.ErrNoHistory) {
		t.Fatalf("without the history stream: %v, want ErrNoHistory", err)
	}
}

func TestTokenTail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "short": "", "1234567": "", "12345678": "5678", "令牌令牌令牌令牌尾巴": "令牌尾巴"} {
		if got := history.TokenTail(in); got != want {
			t.Errorf("TokenTail(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTokenTailAllocates nothing for an ASCII token (every token WeChat
// issues): it runs for every delivery. Not parallel: AllocsPerRun counts
// every goroutine's allocations.
func TestTokenTailAllocates(t *testing.T) {
	var tail string
	if n := testing.AllocsPerRun(100, func() { tail = history.TokenTail("ACCESS_TOKEN_0123456789abcdef") }); n != 0 || tail != "cdef" {
		t.Fatalf("TokenTail of an ASCII token: %q in %v allocations, want cdef in 0", tail, n)
	}
}

// TestReplayBeforeItsCopy: the replay is recorded after its publish, so a
// worker can deliver the copy first; the timeline still tells the replay
// first.
func TestReplayBeforeItsCopy(t *testing.T) {
	t.Parallel()
	js := setup(t, history.StreamConfig{})
	at := time.Now().Add(-time.Minute).UTC()
	w := newWriter(t, js, history.WriterConfig{})
	w.Add(history.Record{State: history.DeadLettered, WaybillID: "W1", Seq: 3, DeadLetterSeq: 1, At: at})
	w.Add(history.Record{State: history.Delivered, WaybillID: "W1", Seq: 9, At: at.Add(2 * time.Second)})
	w.Add(history.Record{State: history.Replayed, WaybillID: "W1", Seq: 9, ReplayOf: 3, DeadLetterSeq: 1, At: at.Add(3 * time.Second)})
	w.Add(history.Record{State: history.Delivered, WaybillID: "W1", Seq: 10, At: at.Add(2500 * time.Millisecond)})
	flush(t, w)
	tl, err := history.NewStore(js, nil).Timeline(context.Background(), "W1")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, s := range tl.Steps {
		got += fmt.Sprintf("%d %s|", s.Seq, s.State)
	}
	if want := "3 dead_lettered|9 replayed|9 delivered|10 delivered|"; got != want {
		t.Fatalf("timeline %s, want %s", got, want)
	}
}
