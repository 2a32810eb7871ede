package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	cases := []struct {
		name      string
		auth      string
		want      int
		challenge string
	}{
		{"missing", "", http.StatusUnauthorized, `Bearer realm="pathupdate"`},
		{"wrong", "Bearer not-the-token-0123456789", http.StatusUnauthorized, `Bearer realm="pathupdate", error="invalid_token"`},
		{"prefix of the token", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized, `Bearer realm="pathupdate", error="invalid_token"`},
		{"token plus more", "Bearer " + testToken + "x", http.StatusUnauthorized, `Bearer realm="pathupdate", error="invalid_token"`},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized, `Bearer realm="pathupdate", error="invalid_token"`},
		{"bare token", testToken, http.StatusUnauthorized, `Bearer realm="pathupdate", error="invalid_token"`},
		{"right", "Bearer " + testToken, http.StatusOK, ""},
		{"scheme in lower case", "bearer " + testToken, http.StatusOK, ""},
	}
	accepted := 0
	for i, c := range cases {
		r := b.post(t, event("AUTH", i), hdrs{"Authorization": c.auth})
		if r.code != c.want {
			t.Errorf("%s: answer %d, want %d: %s", c.name, r.code, c.want, r.body)
			continue
		}
		if got := r.hdr.Get("WWW-Authenticate"); got != c.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, c.challenge)
		}
		if r.code == http.StatusOK {
			accepted++
			continue
		}
		if msg := r.errorMsg(t); strings.Contains(msg, testToken) || !strings.Contains(strings.ToLower(msg), "bearer") {
			t.Errorf("%s: error %q should say how to authenticate, without the token", c.name, msg)
		}
	}
	if n := len(stored(t, b.js)); n != accepted {
		t.Errorf("stream holds %d events, want %d: refused requests must publish nothing", n, accepted)
	}
}

func TestAllowNoAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: gateway.Config{AllowNoAuth: true}})
	if r := b.post(t, event("OPEN", 1), hdrs{"Authorization": ""}); r.code != http.StatusOK {
		t.Fatalf("answer %d without a token on a gateway with AllowNoAuth: %s", r.code, r.body)
	}
	if !strings.Contains(b.logs.String(), "without authentication") {
		t.Errorf("starting without authentication was not logged as a warning:\n%s", b.logs.String())
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	cases := []struct {
		ct   string
		want int
	}{
		{"", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"application/json; charset=latin1", http.StatusUnsupportedMediaType},
		{"application/json;;", http.StatusUnsupportedMediaType},
		{"application/json", http.StatusOK},
		{"application/json; charset=UTF-8", http.StatusOK},
		{"Application/JSON", http.StatusOK},
	}
	for i, c := range cases {
		r := b.post(t, event("CT", i), hdrs{"Content-Type": c.ct})
		if r.code != c.want {
			t.Errorf("Content-Type %q: answer %d, want %d: %s", c.ct, r.code, c.want, r.body)
		}
		if r.code == http.StatusUnsupportedMediaType && !strings.Contains(r.errorMsg(t), "application/json") {
			t.Errorf("Content-Type %q: the error does not say what to send: %s", c.ct, r.body)
		}
	}
}

func TestBodySizeLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	b := setup(t, setupOpts{cfg: gateway.Config{MaxBodyBytes: limit}})
	ev := event("SIZE", 1)
	fits := ev + strings.Repeat(" ", limit-len(ev))
	if r := b.post(t, fits, nil); r.code != http.StatusOK {
		t.Fatalf("a body of exactly %d bytes: answer %d: %s", limit, r.code, r.body)
	}
	r := b.post(t, fits+" ", nil)
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.errorMsg(t), "1024 bytes") {
		t.Fatalf("a body of %d bytes: answer %d, want 413 naming the limit: %s", limit+1, r.code, r.body)
	}

	// Without a Content-Length (chunked) the limit holds while reading.
	req, err := http.NewRequest(http.MethodPost, b.url, io.NopCloser(strings.NewReader(array(ev, ev, ev, ev, ev, ev, ev, ev, ev, ev, ev, ev))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if req.ContentLength != 0 || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit (content length %d): answer %d, want 413", req.ContentLength, res.StatusCode)
	}
	if n := len(stored(t, b.js)); n != 1 {
		t.Errorf("stream holds %d events, want only the one that fitted", n)
	}
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "empty body"},
		{"blank", " \n ", "empty body"},
		{"cut short", `{"token":`, "not valid JSON: unexpected end of JSON input"},
		{"syntax error", "[\n" + event("B", 1) + ",\n  x]", "invalid character 'x' looking for beginning of value (line 3, column 3)"},
		{"two objects", event("B", 1) + event("B", 2), "not valid JSON: invalid character '{' after top-level value"},
		{"string", `"hello"`, "the body is a string"},
		{"number", `42`, "the body is a number"},
		{"null", `null`, "the body is null"},
		{"empty array", `[ ]`, "empty array"},
		{"idempotency key on an array", array(event("B", 1)), "Idempotency-Key header applies to a single-event body"},
	}
	for _, c := range cases {
		var h hdrs
		if strings.HasPrefix(c.name, "idempotency") {
			h = hdrs{"Idempotency-Key": "k1"}
		}
		r := b.post(t, c.body, h)
		if r.code != http.StatusBadRequest {
			t.Errorf("%s: answer %d, want 400: %s", c.name, r.code, r.body)
			continue
		}
		if msg := r.errorMsg(t); !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, msg, c.want)
		}
	}
	if n := len(stored(t, b.js)); n != 0 {
		t.Errorf("stream holds %d events after refused requests", n)
	}
}

func TestSingleEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := event("ONE", 1)
	want, err := pathupdate.DecodeEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for i, status := range []gateway.Status{gateway.StatusAccepted, gateway.StatusDuplicate} {
		r := b.post(t, body, nil)
		if r.code != http.StatusOK {
			t.Fatalf("post %d: answer %d: %s", i+1, r.code, r.body)
		}
		got := r.results(t)
		wantResp := gateway.Response{Results: []gateway.Result{{Index: 0, Status: status, Seq: 1, MsgID: want.ID()}}}
		if status == gateway.StatusAccepted {
			wantResp.Accepted = 1
		} else {
			wantResp.Duplicates = 1
		}
		if fmt.Sprint(got) != fmt.Sprint(wantResp) {
			t.Fatalf("post %d: answer %+v, want %+v", i+1, got, wantResp)
		}
	}
	if evs := stored(t, b.js); len(evs) != 1 || evs[0] != want {
		t.Fatalf("stream holds %+v, want exactly %+v", evs, want)
	}
}

func TestCamelCaseEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	camel := `{"token":"tk","waybillId":"CAMEL1","actionTime":1767225600,"actionType":100001,"actionMsg":"揽件"}`
	r := b.post(t, camel, nil)
	if r.code != http.StatusOK || r.results(t).Accepted != 1 {
		t.Fatalf("answer %d: %s", r.code, r.body)
	}
	want := pathupdate.Event{Token: "tk", WaybillID: "CAMEL1", ActionTime: 1767225600, ActionType: pathupdate.ActionPickedUp, ActionMsg: "揽件"}
	if evs := stored(t, b.js); len(evs) != 1 || evs[0] != want {
		t.Fatalf("stream holds %+v, want %+v", evs, want)
	}
	// The same event in the other spelling is the same event.
	snake := `{"token":"tk","waybill_id":"CAMEL1","action_time":1767225600,"action_type":100001,"action_msg":"揽件"}`
	if r := b.post(t, snake, nil); r.code != http.StatusOK || r.results(t).Duplicates != 1 {
		t.Fatalf("snake_case twin: answer %d, want a duplicate: %s", r.code, r.body)
	}
}

func TestMixedArray(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	a1, a2 := event("MIXA", 1), event("MIXA", 2)
	bCamel := `{"token":"tk-b","waybillId":"MIXB","actionTime":1767225601,"actionType":300003,"actionMsg":"签收"}`
	a2WithID := strings.TrimSuffix(a2, "}") + `,"msg_id":"order-42-step-2"}`
	body := array(
		a1, // 0 accepted
		`{"token":"t","waybill_id":"MIXA","action_time":1,"action_type":300001,"action_msg":"m"}`, // 1 invalid
		a1,       // 2 duplicate of 0
		bCamel,   // 3 accepted
		`42`,     // 4 invalid
		a2WithID, // 5 accepted with its own msg id
		`{"token":"t","waybill_id":"bad id!","action_time":1,"action_type":100001,"action_msg":"m"}`, // 6 invalid
		strings.TrimSuffix(a1, "}")+`,"msg_id":7}`,                                                   // 7 invalid msg_id
	)
	r := b.post(t, body, nil)
	if r.code != http.StatusMultiStatus {
		t.Fatalf("answer %d, want 207: %s", r.code, r.body)
	}
	got := r.results(t)
	ev := func(s string) pathupdate.Event {
		e, err := pathupdate.DecodeEvent([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// Sequences: a1 and a2 (one waybill) in request order; bCamel, of
	// another waybill, published concurrently, anywhere among them.
	want := []gateway.Result{
		{Index: 0, Status: gateway.StatusAccepted, MsgID: ev(a1).ID()},
		{Index: 1, Status: gateway.StatusInvalid, Error: "invalid event: action_type 300001 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{Index: 2, Status: gateway.StatusDuplicate, MsgID: ev(a1).ID()},
		{Index: 3, Status: gateway.StatusAccepted, MsgID: ev(bCamel).ID()},
		{Index: 4, Status: gateway.StatusInvalid, Error: "invalid event: not a JSON object: got a number"},
		{Index: 5, Status: gateway.StatusAccepted, MsgID: "order-42-step-2"},
		{Index: 6, Status: gateway.StatusInvalid, Error: `invalid event: waybill_id "bad id!" has a character outside A-Z a-z 0-9 - _`},
		{Index: 7, Status: gateway.StatusInvalid, Error: "invalid msg_id: msg_id must be a JSON string, got a number"},
	}
	if len(got.Results) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(got.Results), len(want), r.body)
	}
	seq := make([]uint64, len(want))
	for i, w := range want {
		g := got.Results[i]
		seq[i], g.Seq = g.Seq, 0
		if g != w {
			t.Errorf("result %d: %+v, want %+v", i, g, w)
		}
	}
	if got.Accepted != 3 || got.Duplicates != 1 || got.Invalid != 4 || got.Failed != 0 || got.Error != "" {
		t.Errorf("counts %d/%d/%d/%d (accepted/duplicates/invalid/failed), want 3/1/4/0; error %q", got.Accepted, got.Duplicates, got.Invalid, got.Failed, got.Error)
	}
	if seq[2] != seq[0] || seq[5] <= seq[0] || seq[0]+seq[3]+seq[5] != 1+2+3 || seq[1]+seq[4]+seq[6]+seq[7] != 0 {
		t.Errorf("sequences %v: want 1, 2, 3 over results 0, 3, 5 with 5 after 0, the duplicate pointing at 0, none for invalid ones", seq)
	}
	evs := stored(t, b.js)
	if len(evs) != 3 {
		t.Fatalf("stream holds %d events, want exactly the 3 accepted: %+v", len(evs), evs)
	}
	have := map[pathupdate.Event]bool{}
	for _, e := range evs {
		have[e] = true
	}
	for _, e := range []string{a1, bCamel, a2} {
		if !have[ev(e)] {
			t.Errorf("stream lacks %s", e)
		}
	}
}

func TestAllInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.post(t, array(`{"waybill_id":"X"}`, `[]`), nil)
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("answer %d, want 422: %s", r.code, r.body)
	}
	got := r.results(t)
	if got.Invalid != 2 || got.Results[0].Error != "invalid event: token is missing; action_time is missing; action_type is missing; action_msg is missing" ||
		got.Results[1].Error != "invalid event: not a JSON object: got an array" {
		t.Fatalf("results %+v", got)
	}
}

func TestMaxEventsPerRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: gateway.Config{MaxEvents: 3}})
	r := b.post(t, array(event("MAX", 1), event("MAX", 2), event("MAX", 3), event("MAX", 4)), nil)
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.errorMsg(t), "more than 3 events") {
		t.Fatalf("4 events over a limit of 3: answer %d, want 413 naming the limit: %s", r.code, r.body)
	}
	if n := len(stored(t, b.js)); n != 0 {
		t.Fatalf("stream holds %d events after a refused request", n)
	}
	if r := b.post(t, array(event("MAX", 1), event("MAX", 2), event("MAX", 3)), nil); r.code != http.StatusOK {
		t.Fatalf("3 events at a limit of 3: answer %d: %s", r.code, r.body)
	}
}

// TestOrderPerWaybill: events of one waybill are stored in request order
// although different waybills are published concurrently.
func TestOrderPerWaybill(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: gateway.Config{Concurrency: 8}})
	const waybills, perWaybill = 6, 50
	var evs []string
	for n := range perWaybill {
		for w := range waybills {
			evs = append(evs, event(fmt.Sprintf("ORD%d", w), n))
		}
	}
	r := b.post(t, array(evs...), nil)
	if r.code != http.StatusOK || r.results(t).Accepted != len(evs) {
		t.Fatalf("answer %d: %s", r.code, r.body)
	}
	next := map[string]int64{}
	for _, e := range stored(t, b.js) {
		if want := 1_767_225_600 + next[e.WaybillID]; e.ActionTime != want {
			t.Fatalf("waybill %s: stored action_time %d next, want %d: out of request order", e.WaybillID, e.ActionTime, want)
		}
		next[e.WaybillID]++
	}
	for w := range waybills {
		if n := next[fmt.Sprintf("ORD%d", w)]; n != perWaybill {
			t.Errorf("waybill ORD%d: %d events stored, want %d", w, n, perWaybill)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.post(t, event("IDEM", 1), hdrs{"Idempotency-Key": "req-7f3a"})
	if r.code != http.StatusOK || r.results(t).Results[0].MsgID != "req-7f3a" {
		t.Fatalf("answer %d: %s", r.code, r.body)
	}
	// The key decides: different content under the same key is a duplicate.
	r = b.post(t, event("IDEM", 2), hdrs{"Idempotency-Key": "req-7f3a"})
	if res := r.results(t).Results[0]; r.code != http.StatusOK || res.Status != gateway.StatusDuplicate || res.Seq != 1 {
		t.Fatalf("same key again: answer %d: %s", r.code, r.body)
	}
	withID := strings.TrimSuffix(event("IDEM", 3), "}") + `,"msg_id":"other"}`
	if r := b.post(t, withID, hdrs{"Idempotency-Key": "req-8"}); r.code != http.StatusBadRequest || !strings.Contains(r.errorMsg(t), "differ") {
		t.Fatalf("key and msg_id differing: answer %d, want 400: %s", r.code, r.body)
	}
	if r := b.post(t, event("IDEM", 4), hdrs{"Idempotency-Key": strings.Repeat("k", pathupdate.MaxMsgIDLen+1)}); r.code != http.StatusBadRequest {
		t.Fatalf("key too long: answer %d, want 400: %s", r.code, r.body)
	}
	if n := len(stored(t, b.js)); n != 1 {
		t.Fatalf("stream holds %d events, want 1", n)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := do(t, http.MethodGet, b.url, "", nil)
	if r.code != http.StatusMethodNotAllowed || r.hdr.Get("Allow") != http.MethodPost {
		t.Fatalf("GET: answer %d, Allow %q: %s", r.code, r.hdr.Get("Allow"), r.body)
	}
	r = do(t, http.MethodPost, b.srv.URL()+"/v1/event", event("R", 1), nil)
	if r.code != http.StatusNotFound || !strings.Contains(r.errorMsg(t), gateway.Path) {
		t.Fatalf("wrong path: answer %d: %s", r.code, r.body)
	}
}
