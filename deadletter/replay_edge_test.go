package deadletter_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestReplaySkipsWhatCannotBeReplayed writes records directly: a waybill
// that is not an id, and, with a token to set, an event that cannot be
// decoded or names another waybill, stay; an event missing only its
// token is repaired and delivered.
func TestReplaySkipsWhatCannotBeReplayed(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	e.sb.AddOrder("K1", "right")
	w := deadletter.NewWriter(e.js, deadletter.WriterConfig{})
	events := []struct{ waybill, event string }{
		{"", `{"token":"x","waybill_id":"a.b","action_time":1767225600,"action_type":100001,"action_msg":"bad id"}`},
		{"K1", `not json`},
		{"K1", `{"token":"x","waybill_id":"OTHER","action_time":1767225600,"action_type":100001,"action_msg":"other"}`},
		{"K1", `{"waybill_id":"K1","action_time":1767225600,"action_type":100001,"action_msg":"no token"}`},
		{"K1", `{"token":"wrong","waybill_id":"K1","action_time":1767225601,"action_type":200001,"action_msg":"wrong token"}`},
	}
	for i, ev := range events {
		err := w.Write(testCtx(t), deadletter.Record{Event: []byte(ev.event), WaybillID: ev.waybill, Reason: deadletter.ReasonRejected,
			OriginalSubject: "0.logistics.trace.x", OriginalSeq: uint64(1000 + i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Only the first part of a huge event fits a dead letter: replaying it
	// would publish a cut event.
	if err := w.Write(testCtx(t), deadletter.Record{Event: []byte(`{"token":"x","waybill_id":"K1","action_msg":"…`), WaybillID: "K1",
		Reason: deadletter.ReasonInvalidEvent, TruncatedFrom: 2 << 20, OriginalSubject: "0.logistics.trace.K1", OriginalSeq: 2000}); err != nil {
		t.Fatal(err)
	}
	var skipped []uint64
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{SetToken: "right", AllowManyWaybills: true,
		Progress: func(p deadletter.ReplayProgress) {
			if p.Skipped != nil {
				skipped = append(skipped, p.Record.Seq)
				t.Logf("seq %d skipped: %v", p.Record.Seq, p.Skipped)
			}
		}})
	if err != nil || res.Replayed != 2 || res.Skipped != 4 || fmt.Sprint(skipped) != "[1 2 3 6]" {
		t.Fatalf("replay: %+v, %v, skipped %v", res, err, skipped)
	}
	e.settle(t, 4)
	var got []string
	for _, c := range e.sb.Delivered("K1") {
		got = append(got, c.ActionMsg+"/"+c.Token)
	}
	if strings.Join(got, ",") != "no token/right,wrong token/right" {
		t.Fatalf("delivered %v", got)
	}
}

func TestReplayWithoutTraceStream(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	if err := pathupdate.EnsureStreams(testCtx(t), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	r := deadletter.Record{Event: []byte("{}"), WaybillID: "W1", Reason: deadletter.ReasonRejected, OriginalSubject: "x", OriginalSeq: 1}
	if err := deadletter.NewWriter(js, deadletter.WriterConfig{}).Write(testCtx(t), r); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(testCtx(t), pathupdate.TraceStream); err != nil {
		t.Fatal(err)
	}
	store, err := deadletter.NewStore(js, deadletter.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{})
	if !errors.Is(err, deadletter.ErrNoStream) || !strings.Contains(err.Error(), pathupdate.TraceStream) {
		t.Fatalf("replay without the trace stream: %v", err)
	}
	if n, err := store.Count(testCtx(t), deadletter.Filter{}); err != nil || n != 1 {
		t.Fatalf("the record must stay: %d, %v", n, err)
	}
}

// TestReplaySkipsInvalidEventsByDefault: an event a worker refuses as
// invalid_event would come straight back as a new dead letter; replay
// leaves it in place, counts it apart and says why, unless
// IncludeInvalid.
func TestReplaySkipsInvalidEventsByDefault(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	e.sb.AddOrder("K2", "tok")
	w := deadletter.NewWriter(e.js, deadletter.WriterConfig{})
	for i, ev := range []string{
		`not json`,
		`{"token":"tok","waybill_id":"OTHER","action_time":1767225600,"action_type":100001,"action_msg":"other"}`,
		`{"token":"tok","waybill_id":"K2","action_time":1767225600,"action_type":100001,"action_msg":"good"}`,
	} {
		if err := w.Write(testCtx(t), deadletter.Record{Event: []byte(ev), WaybillID: "K2", Reason: deadletter.ReasonInvalidEvent,
			OriginalSubject: "0.logistics.trace.K2", OriginalSeq: uint64(10 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	var why []error
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{Reason: deadletter.ReasonInvalidEvent}, deadletter.ReplayOptions{
		Progress: func(p deadletter.ReplayProgress) {
			if p.Skipped != nil {
				why = append(why, p.Skipped)
			}
		}})
	if err != nil || res.Replayed != 1 || res.Skipped != 2 || res.SkippedInvalid != 2 {
		t.Fatalf("replay: %+v, %v; want the valid one replayed and 2 invalid ones skipped", res, err)
	}
	for _, err := range why {
		if !errors.Is(err, deadletter.ErrSkippedInvalid) || !errors.Is(err, pathupdate.ErrInvalidEvent) || !strings.Contains(err.Error(), "--include-invalid") {
			t.Errorf("skipped for %v, want ErrSkippedInvalid with the event's fault and the flag", err)
		}
	}
	e.settle(t, 2)
	if got := e.sb.Delivered("K2"); len(got) != 1 || got[0].ActionMsg != "good" {
		t.Fatalf("delivered %v, want the valid event", got)
	}

	// Asked for explicitly, they are replayed, and come back.
	res, err = e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{IncludeInvalid: true})
	if err != nil || res.Replayed != 2 || res.Skipped != 0 {
		t.Fatalf("replay with IncludeInvalid: %+v, %v", res, err)
	}
	e.settle(t, 2)
	for _, r := range e.list(t, deadletter.Filter{}) {
		if r.Reason != deadletter.ReasonInvalidEvent || r.Replays != 1 {
			t.Errorf("record %d: %s, replays %d; want invalid_event again, replayed once", r.Seq, r.Reason, r.Replays)
		}
	}
}
