package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

func TestPathUpdateErrcodes(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{Orders: map[string]string{"W1": "T1"}})
	at := token(t, srv)
	const ok = `{"token":"T1","waybill_id":"W1","action_time":1700000000,"action_type":100001,"action_msg":"picked up"}`
	// with replaces `"field":value` of ok by `"field":repl` (repl "" drops it).
	with := func(field, repl string) string {
		i := strings.Index(ok, `"`+field+`":`)
		j := i + strings.IndexAny(ok[i:], ",}")
		if repl == "" {
			if ok[j] == ',' {
				j++
			}
			return ok[:i] + ok[j:]
		}
		return ok[:i] + `"` + field + `":` + repl + ok[j:]
	}
	for _, tc := range []struct {
		name, method, at, body string
		want                   int
		recorded               bool
	}{
		{"ok", "POST", at, ok, 0, true},
		{"unknown fields ignored", "POST", at, `{"extra":[1,2],` + ok[1:], 0, true},
		{"access_token missing", "POST", "", ok, 41001, false},
		{"access_token unknown", "POST", "nope", ok, 40001, false},
		{"GET", "GET", at, "", 43002, false},
		{"empty body", "POST", at, "", 44002, true},
		{"not JSON", "POST", at, "waybill_id=W1", 47001, true},
		{"JSON array", "POST", at, "[" + ok + "]", 47001, true},
		{"trailing garbage", "POST", at, ok + "x", 47001, true},
		{"action_time string", "POST", at, with("action_time", `"1700000000"`), 47001, true},
		{"action_time fraction", "POST", at, with("action_time", `1700000000.5`), 47001, true},
		{"action_time zero", "POST", at, with("action_time", `0`), 47001, true},
		{"action_time missing", "POST", at, with("action_time", ""), 47001, true},
		{"action_type string", "POST", at, with("action_type", `"100001"`), 47001, true},
		{"action_type unknown", "POST", at, with("action_type", `100004`), 47001, true},
		{"action_type missing", "POST", at, with("action_type", ""), 47001, true},
		{"action_msg number", "POST", at, with("action_msg", `5`), 47001, true},
		{"action_msg empty", "POST", at, with("action_msg", `""`), 47001, true},
		{"action_msg null", "POST", at, with("action_msg", `null`), 47001, true},
		{"token missing", "POST", at, with("token", ""), 47001, true},
		{"waybill_id missing", "POST", at, with("waybill_id", ""), 47001, true},
		{"cloud-call spelling", "POST", at, `{"token":"T1","waybillId":"W1","actionTime":1700000000,"actionType":100001,"actionMsg":"m"}`, 47001, true},
		{"waybill unknown", "POST", at, with("waybill_id", `"W2"`), 40199, true},
		{"token incorrect", "POST", at, with("token", `"T2"`), 9300507, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().UpdateCalls
			seqBefore := len(srv.Calls("W1")) + len(srv.Calls("W2")) + len(srv.Calls(""))
			a, err := do(t.Context(), srv.Client(), tc.method, updateURL(srv.URL, tc.at), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != http.StatusOK || a.ErrCode != tc.want {
				t.Fatalf("got HTTP %d errcode %d (%s), want errcode %d", a.Status, a.ErrCode, a.ErrMsg, tc.want)
			}
			if tc.want == 0 && a.ErrMsg != "ok" {
				t.Fatalf("errmsg %q, want ok", a.ErrMsg)
			}
			if tc.want != 0 && !strings.Contains(a.ErrMsg, " rid: ") {
				t.Fatalf("errmsg %q has no rid", a.ErrMsg)
			}
			if got := srv.Stats().UpdateCalls - before; got != 1 {
				t.Fatalf("stats counted %d calls, want 1", got)
			}
			n := len(srv.Calls("W1")) + len(srv.Calls("W2")) + len(srv.Calls("")) - seqBefore
			if want := map[bool]int{true: 1, false: 0}[tc.recorded]; n != want {
				t.Fatalf("recorded %d calls, want %d", n, want)
			}
		})
	}
	// The record holds what came and what it got, in order.
	calls := srv.Calls("W1")
	if len(calls) == 0 || !calls[0].Delivered() || calls[0].ActionMsg != "picked up" ||
		calls[0].Token != "T1" || calls[0].ActionType != 100001 || calls[0].ActionTime != 1700000000 {
		t.Fatalf("first call of W1: %+v", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Seq <= calls[i-1].Seq {
			t.Fatalf("calls out of order: %+v", calls)
		}
	}
	if got := srv.Delivered("W1"); len(got) != 2 {
		t.Fatalf("delivered calls of W1: %d, want 2", len(got))
	}
	if w2 := srv.Calls("W2"); len(w2) != 1 || w2[0].ErrCode != 40199 {
		t.Fatalf("calls of W2: %+v", w2)
	}
}

func TestAcceptAnyWaybill(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true})
	at := token(t, srv)
	for _, w := range []string{"A", "B"} {
		if a := update(t, srv, at, event(w, "any-"+w, 1)); a.ErrCode != 0 {
			t.Fatalf("waybill %s: errcode %d, want 0", w, a.ErrCode)
		}
	}
	// Body rules still hold.
	if a := update(t, srv, at, `{"waybill_id":"A"}`); a.ErrCode != 47001 {
		t.Fatalf("incomplete body: errcode %d, want 47001", a.ErrCode)
	}
}

func TestAddOrder(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{})
	at := token(t, srv)
	if a := update(t, srv, at, event("W", "T", 1)); a.ErrCode != 40199 {
		t.Fatalf("before AddOrder: errcode %d, want 40199", a.ErrCode)
	}
	srv.AddOrder("W", "T")
	if a := update(t, srv, at, event("W", "T", 2)); a.ErrCode != 0 {
		t.Fatalf("after AddOrder: errcode %d, want 0", a.ErrCode)
	}
	srv.AddOrder("W", "T2") // replaces the token
	if a := update(t, srv, at, event("W", "T", 3)); a.ErrCode != 9300507 {
		t.Fatalf("after replacing the token: errcode %d, want 9300507", a.ErrCode)
	}
}

// TestLatencyClientGivesUp: a client that stops waiting ends the call at
// once; the record says so.
func TestLatencyClientGivesUp(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true})
	at := token(t, srv)
	srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(time.Hour)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := do(ctx, srv.Client(), http.MethodPost, updateURL(srv.URL, at), event("W", "T", 1))
		errc <- err
	}()
	waitFor(t, "the call to sit in the latency", func() bool { return len(srv.Calls("W")) == 1 })
	if c := srv.Calls("W")[0]; c.HTTPStatus != 0 {
		t.Fatalf("call in the latency recorded as answered: %+v", c)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("call with 1 h latency: %v, want the client's cancel", err)
	}
	waitFor(t, "the call to be recorded as given up", func() bool {
		return srv.Calls("W")[0].HTTPStatus == sandbox.StatusClientClosed
	})
	if st := srv.Stats(); st.ByHTTPStatus[sandbox.StatusClientClosed] != 1 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s. Only for
// conditions with no event to wait on.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
