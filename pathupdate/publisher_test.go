package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func publisherTestEvent(waybill string, n int) Event {
	return Event{
		Token:      "tok-" + waybill,
		WaybillID:  waybill,
		ActionTime: 1_700_000_000 + int64(n),
		ActionType: ActionInTransit,
		ActionMsg:  fmt.Sprintf("到达 hub %d", n),
	}
}

// publisherSetup starts a server with both streams and a Publisher on it.
func publisherSetup(t testing.TB, cfg PublisherConfig) (jetstream.JetStream, *Publisher) {
	t.Helper()
	_, js := startJetStreamForTopology(t)
	if err := EnsureStreams(jsTestCtx(t), js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return js, p
}

func traceMsgs(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(jsTestCtx(t), TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(jsTestCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishOne(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	ctx := jsTestCtx(t)
	ev := publisherTestEvent("W1", 1)

	res, err := p.Publish(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != 1 || res.Duplicate || res.MsgID != ev.ID() {
		t.Errorf("result = %+v, want seq 1, not duplicate, id %s", res, ev.ID())
	}
	s, _ := js.Stream(ctx, TraceStream)
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(ev.Encode()) {
		t.Errorf("stored %s, want the canonical %s", m.Data, ev.Encode())
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID() {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, ev.ID())
	}
	if WaybillFromSubject(m.Subject) != "W1" {
		t.Errorf("stored on %q", m.Subject)
	}
}

func TestPublishDuplicateStoredOnce(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	ctx := jsTestCtx(t)
	ev := publisherTestEvent("W1", 1)

	first, err := p.Publish(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Publish(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !again.Duplicate || again.Seq != first.Seq {
		t.Errorf("first %+v, again %+v: want the second a duplicate of the first", first, again)
	}
	if n := traceMsgs(t, js); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestPublishWithID(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	ctx := jsTestCtx(t)
	a, b := publisherTestEvent("W1", 1), publisherTestEvent("W1", 2)

	// The caller's id decides: two different events under one id are one.
	r1, err := p.PublishWithID(ctx, a, "order-42")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := p.PublishWithID(ctx, b, "order-42")
	if err != nil {
		t.Fatal(err)
	}
	if r1.MsgID != "order-42" || r1.Duplicate || !r2.Duplicate {
		t.Errorf("r1 %+v r2 %+v", r1, r2)
	}
	// Empty means the content id.
	r3, err := p.PublishWithID(ctx, b, "")
	if err != nil || r3.MsgID != b.ID() || r3.Duplicate {
		t.Errorf("empty id: %+v, %v", r3, err)
	}
	for _, bad := range []string{"two\nlines", " padded", strings.Repeat("x", MaxMsgIDLen+1)} {
		if _, err := p.PublishWithID(ctx, a, bad); err == nil {
			t.Errorf("msg id %q accepted", bad)
		}
	}
	if n := traceMsgs(t, js); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

func TestPublishRefusesInvalidEvent(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	ctx := jsTestCtx(t)
	for name, ev := range map[string]Event{
		"zero":           {},
		"bad waybill":    {Token: "t", WaybillID: "W.1", ActionTime: 1, ActionType: ActionSigned, ActionMsg: "m"},
		"wildcard":       {Token: "t", WaybillID: "*", ActionTime: 1, ActionType: ActionSigned, ActionMsg: "m"},
		"bad actiontype": {Token: "t", WaybillID: "W1", ActionTime: 1, ActionType: 1, ActionMsg: "m"},
	} {
		if _, err := p.Publish(ctx, ev); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
	if n := traceMsgs(t, js); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

func TestPublishStreamMissing(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t) // no EnsureStreams
	p, err := NewPublisher(js, PublisherConfig{AckTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := jsTestCtx(t)

	_, err = p.Publish(ctx, publisherTestEvent("W1", 1))
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || !strings.Contains(err.Error(), TraceStream+" is missing") {
		t.Errorf("err = %v, want ErrNoStreamResponse naming %s", err, TraceStream)
	}

	sum, err := p.PublishLines(ctx, strings.NewReader(string(publisherTestEvent("W1", 1).Encode())+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 1 || sum.Accepted != 0 || len(sum.Errors) != 1 || sum.Errors[0].Line != 1 ||
		!errors.Is(sum.Errors[0].Err, jetstream.ErrNoStreamResponse) {
		t.Errorf("summary = %+v", sum)
	}
}

func TestPublishLinesCountsEveryKindOfLine(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	a, b := publisherTestEvent("A1", 1), publisherTestEvent("B1", 1)
	const (
		badType = `{"token":"t","waybill_id":"C1","action_time":1,"action_type":999,"action_msg":"m"}`
		camel   = `{"token":"t","waybillId":"C1","actionTime":1,"actionType":100001,"actionMsg":"m","extra":[]}`
		snake   = `{"token":"t","waybill_id":"C1","action_time":1,"action_type":100001,"action_msg":"m"}`
	)
	lines := []string{
		string(a.Encode()),                  // 1 accepted
		"",                                  // 2 blank
		`{"token": "t"`,                     // 3 invalid: broken JSON
		string(b.Encode()),                  // 4 accepted
		string(a.Encode()),                  // 5 duplicate
		badType,                             // 6 invalid: action type
		camel,                               // 7 accepted: cloud-call spelling, unknown field
		"   \t",                             // 8 blank
		snake,                               // 9 duplicate of 7: same content, other spelling
		strings.Repeat("x", MaxLineBytes+1), // 10 invalid: too long
		string(b.Encode()) + "\r",           // 11 duplicate, a stray CR at the end
	}
	var progressCalls int
	sum, err := p.PublishLines(jsTestCtx(t), strings.NewReader(strings.Join(lines, "\r\n")), func(Summary) { progressCalls++ })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 3 || sum.Duplicates != 3 || sum.Invalid != 3 || sum.Failed != 0 {
		t.Errorf("summary = accepted %d duplicates %d invalid %d failed %d, want 3 3 3 0 (%v)",
			sum.Accepted, sum.Duplicates, sum.Invalid, sum.Failed, sum.Errors)
	}
	var badLines []int
	for _, le := range sum.Errors {
		badLines = append(badLines, le.Line)
		if !errors.Is(le, ErrInvalidEvent) {
			t.Errorf("line %d: %v does not match ErrInvalidEvent", le.Line, le.Err)
		}
	}
	if fmt.Sprint(badLines) != "[3 6 10]" {
		t.Errorf("error lines = %v, want [3 6 10]", badLines)
	}
	if progressCalls != 1 {
		t.Errorf("progress called %d times, want once (the end)", progressCalls)
	}
	if n := traceMsgs(t, js); n != 3 {
		t.Errorf("stream holds %d messages, want 3", n)
	}
}

// pendingWatcher is the real handle; it records the most async publishes
// ever outstanding on it right after each new one.
type pendingWatcher struct {
	jetstream.JetStream
	most atomic.Int64
}

func (w *pendingWatcher) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := w.JetStream.PublishMsgAsync(m, opts...)
	n := int64(w.JetStream.PublishAsyncPending())
	for {
		old := w.most.Load()
		if n <= old || w.most.CompareAndSwap(old, n) {
			break
		}
	}
	return f, err
}

func TestPublishLinesTenThousandBoundedPending(t *testing.T) {
	t.Parallel()
	js, _ := publisherSetup(t, PublisherConfig{})
	watched := &pendingWatcher{JetStream: js}
	const maxPending = 64
	p, err := NewPublisher(watched, PublisherConfig{MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}

	const lines = 10_000
	var in strings.Builder
	invalid, ids := 0, make(map[string]bool)
	for i := range lines {
		if i%1000 == 999 { // one invalid line in every thousand
			in.WriteString("{}\n")
			invalid++
			continue
		}
		ev := publisherTestEvent(fmt.Sprintf("W%d", i%500), i%9000) // the last thousand repeat the first
		ids[ev.ID()] = true
		in.Write(ev.Encode())
		in.WriteByte('\n')
	}
	wantAccepted := len(ids)
	wantDuplicates := lines - invalid - wantAccepted
	if wantDuplicates < 900 {
		t.Fatalf("test input has only %d duplicates", wantDuplicates)
	}

	var progress []Summary
	sum, err := p.PublishLines(jsTestCtx(t), strings.NewReader(in.String()), func(s Summary) { progress = append(progress, s) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != wantAccepted || sum.Duplicates != wantDuplicates || sum.Invalid != invalid || sum.Failed != 0 {
		t.Errorf("summary = accepted %d duplicates %d invalid %d failed %d, want %d %d %d 0",
			sum.Accepted, sum.Duplicates, sum.Invalid, sum.Failed, wantAccepted, wantDuplicates, invalid)
	}
	if n := traceMsgs(t, js); n != uint64(wantAccepted) {
		t.Errorf("stream holds %d messages, want %d", n, wantAccepted)
	}
	if most := watched.most.Load(); most > maxPending || most < 2 {
		t.Errorf("at most %d publishes were pending at once, want 2..%d", most, maxPending)
	}
	if len(progress) != lines/ProgressEvery+1 {
		t.Errorf("progress called %d times, want %d", len(progress), lines/ProgressEvery+1)
	}
}

func TestPublishLinesOnHandleWithLowerAsyncLimit(t *testing.T) {
	t.Parallel()
	s, _ := startJetStreamForTopology(t)
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(jsTestCtx(t), js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(js, PublisherConfig{MaxPending: 256})
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range 500 {
		in.Write(publisherTestEvent("W", i).Encode())
		in.WriteByte('\n')
	}
	sum, err := p.PublishLines(jsTestCtx(t), strings.NewReader(in.String()), nil)
	if err != nil || sum.Accepted != 500 || sum.Failed != 0 {
		t.Errorf("summary %+v, err %v: want 500 accepted", sum, err)
	}
}

// lineReader hands out one line per Read and calls after(n) once line n
// has been handed out.
type lineReader struct {
	lines []string
	n     int
	after func(n int) error
}

func (r *lineReader) Read(b []byte) (int, error) {
	if r.n == len(r.lines) {
		return 0, io.EOF
	}
	if err := r.after(r.n); err != nil {
		return 0, err
	}
	n := copy(b, r.lines[r.n]+"\n")
	r.n++
	return n, nil
}

func TestPublishLinesStopsOnContextAndReadErrors(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	lines := make([]string, 20)
	for i := range lines {
		lines[i] = string(publisherTestEvent("W", i).Encode())
	}

	ctx, cancel := context.WithCancel(jsTestCtx(t))
	sum, err := p.PublishLines(ctx, &lineReader{lines: lines, after: func(n int) error {
		if n == 5 {
			cancel()
		}
		return nil
	}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	// Line 6 was read before the next check of ctx; it is not published.
	if sum.Accepted != 5 || sum.Failed != 0 {
		t.Errorf("after cancel: %+v, want 5 accepted and every ack awaited", sum)
	}

	boom := errors.New("disk on fire")
	sum, err = p.PublishLines(jsTestCtx(t), &lineReader{lines: lines, after: func(n int) error {
		if n == 10 {
			return boom
		}
		return nil
	}}, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "line 11") {
		t.Errorf("err = %v, want %v at line 11", err, boom)
	}
	if sum.Accepted != 5 || sum.Duplicates != 5 {
		t.Errorf("after read error: %+v, want 5 new and 5 duplicates", sum)
	}
	if n := traceMsgs(t, js); n != 10 {
		t.Errorf("stream holds %d messages, want 10", n)
	}
}

func TestPublishConcurrentCallers(t *testing.T) {
	t.Parallel()
	js, p := publisherSetup(t, PublisherConfig{})
	ctx := jsTestCtx(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := p.Publish(ctx, publisherTestEvent(fmt.Sprintf("G%d", g), i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := traceMsgs(t, js); n != 400 {
		t.Errorf("stream holds %d messages, want 400", n)
	}
}

func TestPublisherConfigValidate(t *testing.T) {
	t.Parallel()
	if _, err := NewPublisher(nil, PublisherConfig{}); err == nil {
		t.Error("nil handle accepted")
	}
	for _, tt := range []struct {
		cfg   PublisherConfig
		field string
	}{
		{PublisherConfig{MaxPending: -1}, "MaxPending"},
		{PublisherConfig{AckTimeout: -time.Second}, "AckTimeout"},
		{PublisherConfig{AckAttempts: -1}, "AckAttempts"},
	} {
		err := tt.cfg.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), "PublisherConfig."+tt.field) {
			t.Errorf("%+v: err = %v, want one naming %s", tt.cfg, err, tt.field)
		}
	}
	if err := (PublisherConfig{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}
