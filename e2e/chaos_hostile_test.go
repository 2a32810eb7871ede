package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// hostileCase is one message a producer with a plain NATS client could
// publish to logistics.trace.<token>: never delivered, dead-lettered as
// invalid_event with a reason naming what is wrong.
type hostileCase struct {
	name  string
	token string // subject token; "" means the case's own waybill
	// payload builds the bytes from the case's waybill and the server's
	// max payload.
	payload func(waybill string, maxPayload int) []byte
	// why is a fragment the dead letter's errmsg must contain.
	why string
	// core publishes without JetStream (no PubAck), as `nats pub` does.
	core bool
	// validSubject: the subject token is a valid waybill id, so valid
	// events of that waybill are published around the hostile one.
	invalidSubject bool
}

// secretToken is the token of hostile events: it must never show in a
// dead letter's errmsg (it is a credential-like value).
const secretToken = "SECRET-waybill-token-7f3a"

func body(waybill string, fields ...string) []byte {
	base := map[string]string{
		"token":       `"` + secretToken + `"`,
		"waybill_id":  `"` + waybill + `"`,
		"action_time": "1767225600",
		"action_type": "100001",
		"action_msg":  `"hostile"`,
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			delete(base, fields[i])
		} else {
			base[fields[i]] = fields[i+1]
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, k := range []string{"token", "waybill_id", "action_time", "action_type", "action_msg"} {
		v, ok := base[k]
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", k, v)
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func fixed(s string) func(string, int) []byte {
	return func(string, int) []byte { return []byte(s) }
}

var hostileCases = []hostileCase{
	{name: "not JSON", payload: fixed("this is not JSON"), why: "not a JSON object", core: true},
	{name: "empty payload", payload: fixed(""), why: "not a JSON object"},
	{name: "JSON array", payload: fixed(`[1,2,3]`), why: "not a JSON object: got an array", core: true},
	{name: "JSON string", payload: fixed(`"hello"`), why: "not a JSON object: got a string"},
	{name: "trailing garbage", payload: func(w string, _ int) []byte { return append(body(w), " extra"...) }, why: "not a JSON object"},
	{name: "token a number", payload: func(w string, _ int) []byte { return body(w, "token", "12345") }, why: "token must be a JSON string, got a number", core: true},
	{name: "action_time a string", payload: func(w string, _ int) []byte { return body(w, "action_time", `"1767225600"`) }, why: "action_time must be a JSON number, got a string"},
	{name: "action_time fractional", payload: func(w string, _ int) []byte { return body(w, "action_time", "1767225600.5") }, why: "action_time 1767225600.5 is not a whole number"},
	{name: "action_time negative", payload: func(w string, _ int) []byte { return body(w, "action_time", "-5") }, why: "action_time -5 is not positive"},
	{name: "action_type unknown", payload: func(w string, _ int) []byte { return body(w, "action_type", "999999") }, why: "action_type 999999 is not one of 100001,", core: true},
	{name: "action_msg null", payload: func(w string, _ int) []byte { return body(w, "action_msg", "null") }, why: "action_msg must be a JSON string, got null"},
	{name: "action_msg missing", payload: func(w string, _ int) []byte { return body(w, "action_msg", "") }, why: "action_msg is missing"},
	{name: "token missing", payload: func(w string, _ int) []byte { return body(w, "token", "") }, why: "token is missing", core: true},
	{name: "token too long", payload: func(w string, _ int) []byte { return body(w, "token", `"`+strings.Repeat("t", 300)+`"`) }, why: "token is 300 characters long, more than 256"},
	{name: "field twice, different values", payload: func(w string, _ int) []byte {
		return []byte(`{"token":"t","waybill_id":"` + w + `","action_time":1767225600,"action_type":100001,"action_msg":"a","actionMsg":"b"}`)
	}, why: "action_msg is given more than once with different values"},
	{name: "invalid UTF-8", payload: func(w string, _ int) []byte {
		return []byte(`{"token":"t","waybill_id":"` + w + `","action_time":1767225600,"action_type":100001,"action_msg":"bad ` + "\xff\xfe" + ` bytes"}`)
	}, why: "not valid UTF-8", core: true},
	{name: "deeply nested unknown field", payload: func(w string, _ int) []byte {
		return append(append([]byte(`{"x":`+strings.Repeat("[", 20000)), strings.Repeat("]", 20000)...), body(w)[1:]...)
	}, why: "not a JSON object"},
	{name: "huge action_msg at max payload", payload: func(w string, maxPayload int) []byte {
		head := body(w, "action_msg", `"`)
		head = head[:len(head)-1] // up to the opening quote of action_msg
		msg := strings.Repeat("长", (maxPayload-len(head)-2)/3)
		b := append(append(head, msg...), `"}`...)
		for len(b) < maxPayload { // pad to exactly the max payload
			b = append(b[:len(b)-1], ' ', '}')
		}
		return b
	}, why: "more than 1024"},
	{name: "waybill in body differs from subject", payload: func(string, int) []byte { return body("OTHER01") }, why: `differs from`},
	{name: "subject token not a waybill id", token: "bad$id!", invalidSubject: true,
		payload: func(string, int) []byte { return body("bad$id!") }, why: "has a character outside A-Z a-z 0-9 - _", core: true},
	{name: "subject token not a waybill id, body valid", token: "顺丰-123", invalidSubject: true,
		payload: func(w string, _ int) []byte { return body("SF123") }, why: "differs from"},
	{name: "subject token too long", token: strings.Repeat("L", 65), invalidSubject: true,
		payload: func(string, int) []byte { return body(strings.Repeat("L", 65)) }, why: "more than 64"},
}

// TestChaosHostileEvents publishes, with plain NATS publishes, messages
// that break every rule of the event, each between valid events of the
// same waybill. Each is dead-lettered as invalid_event with a reason that
// names the problem (and never the token), the valid events around it are
// delivered in order, unusual but valid events arrive byte for byte, and
// the worker neither crashes nor calls the API for a hostile message.
func TestChaosHostileEvents(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ctx := context.Background()
	node := startNode(t)
	nc, js := connectTCP(t, node.URL())
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	t.Cleanup(sb.Close)
	workers := []*workerProc{startChaosWorker(t, node.URL(), sb.URL, workerOpts{})}
	if chaosLong() {
		workers = append(workers, startChaosWorker(t, node.URL(), sb.URL, workerOpts{}))
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	maxPayload := int(nc.MaxPayload())

	type want struct {
		c       hostileCase
		payload []byte
		waybill string // the dead letter's: "" for an invalid subject token
	}
	wants := map[string]want{} // by subject token
	var trs []trace
	rounds := bySize(1, 5)
	for r := range rounds {
		for i, c := range hostileCases {
			w := fmt.Sprintf("HOST%d_%02d", r, i)
			tok := c.token
			if tok == "" {
				tok = w
			} else if r > 0 {
				tok = fmt.Sprintf("%s%d", tok, r)
			}
			// Around it, valid events; the middle one is valid but unusual.
			tr := trace{}
			for j, msg := range []string{"before", "odd <script>\u0000\t\"quoted\"\u2028 😀", "after"} {
				tr = append(tr, pathupdate.Event{Token: "tok", WaybillID: w, ActionTime: 1_767_225_600 + int64(j),
					ActionType: pathupdate.ActionInTransit, ActionMsg: fmt.Sprintf("%s %d", msg, j)})
			}
			if _, err := pub.Publish(ctx, tr[0]); err != nil {
				t.Fatal(err)
			}
			payload := c.payload(w, maxPayload)
			if c.name == "huge action_msg at max payload" && len(payload) != maxPayload {
				t.Fatalf("huge payload is %d bytes, want %d", len(payload), maxPayload)
			}
			subject := pathupdate.TraceSubject(tok)
			if c.core {
				err = nc.Publish(subject, payload)
			} else {
				_, err = js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload})
			}
			if err != nil {
				t.Fatalf("%s: publish: %v", c.name, err)
			}
			for _, ev := range tr[1:] {
				if _, err := pub.Publish(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			trs = append(trs, tr)
			wl := w
			if c.invalidSubject {
				wl = ""
			}
			wants[tok] = want{c: c, payload: payload, waybill: wl}
		}
	}
	// A valid event carrying a header that is not ours to trust.
	odd := pathupdate.Event{Token: "tok", WaybillID: "HOSTHDR", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionPickedUp, ActionMsg: "with a bad replays header"}
	m := &nats.Msg{Subject: pathupdate.TraceSubject(odd.WaybillID), Data: odd.Encode(), Header: nats.Header{deadletter.ReplaysHeader: []string{"-7; drop table"}}}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	trs = append(trs, trace{odd})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	hostile := rounds * len(hostileCases)

	var dls []deadletter.Record
	waitUntil(t, "every valid event delivered and every hostile one dead-lettered", 2*time.Minute, func() bool {
		if !drained(ctx, js, sb, trs) {
			return false
		}
		dls = readDeadLetters(ctx, t, js)
		return len(dls) >= hostile
	})

	// Dead letters: exactly the hostile messages, each once, each with a
	// readable reason and the original bytes (the beginning of them, for
	// one too big to store whole with the record's headers).
	bySubject := map[string][]deadletter.Record{}
	for _, r := range dls {
		tok := pathupdate.WaybillFromSubject(r.OriginalSubject)
		bySubject[tok] = append(bySubject[tok], r)
	}
	for _, tok := range sortedKeys(wants) {
		w := wants[tok]
		recs := bySubject[tok]
		if len(recs) != 1 {
			t.Errorf("%s: %d dead letters, want 1", w.c.name, len(recs))
			continue
		}
		r := recs[0]
		switch {
		case r.Reason != deadletter.ReasonInvalidEvent:
			t.Errorf("%s: reason %q, want %q", w.c.name, r.Reason, deadletter.ReasonInvalidEvent)
		case !strings.Contains(r.ErrMsg, w.c.why):
			t.Errorf("%s: errmsg %q does not say %q", w.c.name, r.ErrMsg, w.c.why)
		case strings.Contains(r.ErrMsg, secretToken):
			t.Errorf("%s: errmsg %q shows the event's token", w.c.name, r.ErrMsg)
		case r.WaybillID != w.waybill:
			t.Errorf("%s: dead letter's waybill %q, want %q", w.c.name, r.WaybillID, w.waybill)
		case r.Attempts != 0:
			t.Errorf("%s: %d API attempts for an invalid event, want 0", w.c.name, r.Attempts)
		case r.TruncatedFrom == 0 && !bytes.Equal(r.Event, w.payload):
			t.Errorf("%s: dead letter holds %d bytes, not the original %d", w.c.name, len(r.Event), len(w.payload))
		case r.TruncatedFrom != 0 && (r.TruncatedFrom != len(w.payload) || !bytes.HasPrefix(w.payload, r.Event)):
			t.Errorf("%s: truncated dead letter: %d bytes from %d, want a prefix of the %d-byte original", w.c.name, len(r.Event), r.TruncatedFrom, len(w.payload))
		case r.TruncatedFrom != 0 && len(w.payload) < maxPayload-4096:
			t.Errorf("%s: a %d-byte original was truncated", w.c.name, len(w.payload))
		}
		if strings.HasPrefix(tok, "HOST0_") || w.c.invalidSubject {
			t.Logf("%-45s -> %s", w.c.name, r.ErrMsg)
		}
	}
	if len(dls) != hostile {
		t.Errorf("%d dead letters, want exactly the %d hostile messages", len(dls), hostile)
	}
	// Nothing hostile reached the API: calls only for the traces' waybills.
	traced := map[string]bool{}
	for _, tr := range trs {
		traced[tr[0].WaybillID] = true
	}
	for _, w := range sb.Waybills() {
		if !traced[w] {
			t.Errorf("the API was called for waybill %q, which only hostile messages name", w)
		}
	}
	for _, w := range workers {
		requireHealthy(t, w)
	}
	f := verify(t, "hostile events", sb, trs, start)
	f.Events += hostile
	f.DeadLettered = len(dls)
	f.Notes = fmt.Sprintf("%d kinds of hostile message, %d rounds", len(hostileCases), rounds)
	f.report(t)
	stopAll(t, workers...)
}
