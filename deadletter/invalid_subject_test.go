package deadletter_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// rawDeadLetter stores a message with dead-letter headers on subject
// as-is, as an older version (or anyone with publish rights) could.
func (e *env) rawDeadLetter(t *testing.T, subject, original string, reason string, errcode int, event string) {
	t.Helper()
	h := nats.Header{}
	h.Set(deadletter.ReasonHeader, reason)
	h.Set(deadletter.ErrcodeHeader, strconv.Itoa(errcode))
	h.Set(deadletter.OriginalSubjectHeader, original)
	h.Set(deadletter.OriginalSeqHeader, "7")
	h.Set(deadletter.FailedAtHeader, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := e.js.PublishMsg(testCtx(t), &nats.Msg{Subject: subject, Header: h, Data: []byte(event)}); err != nil {
		t.Fatalf("store on %s: %v", subject, err)
	}
}

func eventOf(waybill, msg string) string {
	return fmt.Sprintf(`{"token":"tok","waybill_id":%q,"action_time":1767225600,"action_type":100001,"action_msg":%q}`, waybill, msg)
}

// TestInvalidIDsAndTheInvalidWaybill: "_invalid" is a valid waybill id.
// Its dead letters used to share logistics.deadletter._invalid with those
// of invalid ids and could never be replayed; invalid ids now go to
// logistics.deadletter.~invalid, which no waybill can take, and the old
// subject is still read right: an old dead letter of an invalid id there
// stays invalid, one of the waybill "_invalid" is that waybill's. And a
// message on logistics.deadletter.$JS (or .*, .Üñ) with dead-letter
// headers never yields a waybill: replay refuses it and keeps it instead
// of publishing to logistics.trace.$JS.
func TestInvalidIDsAndTheInvalidWaybill(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	e.sb.AddOrder("_invalid", "tok")
	w := deadletter.NewWriter(e.js, deadletter.WriterConfig{})
	legacy := pathupdate.DeadLetterSubject("_invalid")
	// seq 1: an old dead letter of an invalid id, on the legacy subject.
	e.rawDeadLetter(t, legacy, "3.logistics.trace.Üñ", deadletter.ReasonInvalidEvent, 0, eventOf("Üñ", "old invalid"))
	// seq 2: an old 40199 of the waybill "_invalid", on the same subject.
	e.rawDeadLetter(t, legacy, "5.logistics.trace._invalid", deadletter.ReasonRejected, 40199, eventOf("_invalid", "old rejected"))
	// seq 3 and 4, written now: the waybill "_invalid", and an invalid id.
	for i, r := range []deadletter.Record{
		{WaybillID: "_invalid", Reason: deadletter.ReasonRejected, ErrCode: 40199, Event: []byte(eventOf("_invalid", "new rejected"))},
		{WaybillID: "Üñ", Reason: deadletter.ReasonInvalidEvent, Event: []byte(eventOf("Üñ", "new invalid"))},
	} {
		r.OriginalSubject, r.OriginalSeq = "0.logistics.trace."+r.WaybillID, uint64(100+i)
		if err := w.Write(testCtx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	// seq 5 to 7: foreign messages that look like dead letters.
	for _, token := range []string{"$JS", "*", "Üñ"} {
		e.rawDeadLetter(t, pathupdate.DeadLetterSubject(token), "0.logistics.trace."+token, deadletter.ReasonRejected, 40199, eventOf(token, "foreign"))
	}

	waybills := func(f deadletter.Filter) string {
		var out []string
		for _, r := range e.list(t, f) {
			out = append(out, fmt.Sprintf("%d:%s", r.Seq, r.WaybillID))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		f    deadletter.Filter
		want string
	}{
		{deadletter.Filter{}, "1: 2:_invalid 3:_invalid 4: 5: 6: 7:"},
		{deadletter.Filter{Waybill: "_invalid"}, "2:_invalid 3:_invalid"},
		{deadletter.Filter{Waybill: deadletter.InvalidWaybill}, "1: 4: 5: 6: 7:"},
	} {
		if got := waybills(tc.f); got != tc.want {
			t.Errorf("list %s: %s, want %s", tc.f, got, tc.want)
		}
	}
	if n, err := e.store.Count(testCtx(t), deadletter.Filter{Waybill: "_invalid"}); err != nil || n != 2 {
		t.Errorf("count of waybill _invalid: %d, %v; want 2 (the legacy subject holds 3)", n, err)
	}
	if st, err := e.store.Stats(testCtx(t), deadletter.Filter{Waybill: deadletter.InvalidWaybill}); err != nil || st.Total != 5 {
		t.Errorf("stats of the invalid ids: %+v, %v; want 5", st, err)
	}
	if r, err := e.store.Get(testCtx(t), 1); err != nil || r.WaybillID != "" {
		t.Errorf("show 1 (old invalid id): waybill %q, %v; want none", r.WaybillID, err)
	}

	var skipped []string
	res, err := e.store.Replay(testCtx(t), deadletter.Filter{}, deadletter.ReplayOptions{IncludeInvalid: true,
		Progress: func(p deadletter.ReplayProgress) {
			if p.Skipped != nil {
				skipped = append(skipped, strconv.FormatUint(p.Record.Seq, 10))
				if !strings.Contains(p.Skipped.Error(), "not a valid waybill id") {
					t.Errorf("seq %d skipped for %v, want the waybill rule named", p.Record.Seq, p.Skipped)
				}
			}
		}})
	if err != nil || res.Replayed != 2 || res.Skipped != 5 || strings.Join(skipped, " ") != "1 4 5 6 7" {
		t.Fatalf("replay: %+v, %v, skipped %v; want 2 replayed (the waybill _invalid), 1 4 5 6 7 skipped", res, err, skipped)
	}
	e.settle(t, 5) // the skipped ones are kept; nothing is left in the trace stream
	var got []string
	for _, c := range e.sb.Delivered("_invalid") {
		got = append(got, c.ActionMsg)
	}
	if strings.Join(got, ",") != "old rejected,new rejected" {
		t.Fatalf("waybill _invalid delivered %q, want its two events in order", got)
	}
	n, err := e.store.Purge(testCtx(t), deadletter.Filter{Waybill: deadletter.InvalidWaybill})
	if err != nil || n != 5 || e.streamMsgs(t, pathupdate.DeadLetterStream) != 0 {
		t.Fatalf("purge of the invalid ids: %d, %v; %d left", n, err, e.streamMsgs(t, pathupdate.DeadLetterStream))
	}
}
