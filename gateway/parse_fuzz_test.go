package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// FuzzParseBody feeds arbitrary request bodies (and Idempotency-Key
// headers) to the gateway's body decoder. It must never panic. A refusal
// of the whole request is a 400 or 413 with a message. Otherwise there is
// one result per event in the body; each event is either invalid, with
// the reason, or a valid event with a Nats-Msg-Id that a publish can
// carry; and no more than maxEvents events are taken.
// Seeds: testdata/fuzz/FuzzParseBody.
func FuzzParseBody(f *testing.F) {
	ev := `{"token":"t","waybill_id":"W1","action_time":1767225600,"action_type":100001,"action_msg":"到达"}`
	for _, s := range []string{ev, "[" + ev + "," + ev + "]", "[]", "{}", `[{"msg_id":"a"},1,"x",null]`, ""} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(ev), "key-1")
	const maxEvents = 8
	f.Fuzz(func(t *testing.T, body []byte, idemKey string) {
		items, results, rerr := parseBody(body, maxEvents, idemKey)
		if rerr != nil {
			if rerr.code != http.StatusBadRequest && rerr.code != http.StatusRequestEntityTooLarge || rerr.msg == "" {
				t.Fatalf("refusal %d %q", rerr.code, rerr.msg)
			}
			if items != nil || results != nil {
				t.Fatal("a refused request came with events")
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		if len(results) == 0 || len(results) > maxEvents {
			t.Fatalf("%d results for an accepted body (max %d): %q", len(results), maxEvents, body)
		}
		valid := 0
		for i, r := range results {
			switch {
			case r.Index != i:
				t.Fatalf("result %d has index %d", i, r.Index)
			case r.Status == StatusInvalid && r.Error == "":
				t.Fatalf("result %d invalid without a reason", i)
			case r.Status == "":
				valid++
				if r.MsgID == "" {
					t.Fatalf("valid result %d without a msg id", i)
				}
			case r.Status != StatusInvalid:
				t.Fatalf("result %d has status %q before publishing", i, r.Status)
			}
		}
		if valid != len(items) {
			t.Fatalf("%d valid results, %d items", valid, len(items))
		}
		for _, it := range items {
			if err := it.ev.Validate(); err != nil {
				t.Fatalf("item %d is not a valid event: %v", it.index, err)
			}
			if results[it.index].MsgID != it.msgID || checkMsgID(it.msgID) != nil {
				t.Fatalf("item %d msg id %q (result %q)", it.index, it.msgID, results[it.index].MsgID)
			}
			if idemKey != "" && it.msgID != idemKey {
				t.Fatalf("item %d msg id %q, want the Idempotency-Key %q", it.index, it.msgID, idemKey)
			}
			if _, err := pathupdate.DecodeEvent(it.ev.Encode()); err != nil {
				t.Fatalf("item %d does not encode to a valid event: %v", it.index, err)
			}
		}
	})
}
