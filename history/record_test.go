package history

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestEncodeReadsBackAsJSON: the hand-written encoding is JSON that
// encoding/json reads back into the same record.
func TestEncodeReadsBackAsJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	for _, r := range []Record{
		{State: Delivered, WaybillID: "W1", At: at.UTC()},
		{State: Retrying, WaybillID: "SF-1_a", Seq: 1 << 60, ActionType: 200001, ActionTime: -5, ActionMsg: "派送中 \"quoted\" \\ back\n\t\r\x00\x1f end",
			TokenTail: "a1b2", Outcome: "transient", ErrCode: -1, ErrMsg: "<system> & error\u2028", Attempts: 3, Reason: "",
			FirstAttempt: at.UTC(), At: at.UTC().Add(time.Second), NextAttempt: at.UTC().Add(2 * time.Second), LatencyMS: 12,
			Worker: "host-1", DeadLetterSeq: 7, ReplayOf: 3},
	} {
		b, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("read back\n%+v\nwant\n%+v\nfrom %s", back, r, b)
		}
		want, _ := json.Marshal(r)
		var a, w map[string]any
		_ = json.Unmarshal(b, &a)
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(a, w) {
			t.Fatalf("fields differ from encoding/json's:\n%s\n%s", b, want)
		}
	}
	// Invalid UTF-8 becomes U+FFFD, as encoding/json writes it.
	b, _ := Record{State: Delivered, WaybillID: "W1", ActionMsg: "a\xffb", At: at}.encode()
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back.ActionMsg != "a\ufffdb" {
		t.Fatalf("invalid UTF-8: %s -> %q, %v", b, back.ActionMsg, err)
	}
}
