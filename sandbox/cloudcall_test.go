package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

func cloudURL(base, at, env, name string) string {
	q := url.Values{}
	if at != "" {
		q.Set("access_token", at)
	}
	if env != "" {
		q.Set("env", env)
	}
	if name != "" {
		q.Set("name", name)
	}
	return base + sandbox.InvokeCloudFunctionPath + "?" + q.Encode()
}

// cloudEvent is a valid cloud-call body.
func cloudEvent(waybill, tok string, n int) string {
	b, _ := json.Marshal(map[string]any{
		"token": tok, "waybillId": waybill, "actionTime": 1700000000 + n,
		"actionType": 200001, "actionMsg": fmt.Sprintf("step %d", n),
	})
	return string(b)
}

// cloudAnswer is an invoke answer with its resp_data decoded (fn is nil
// when there was none).
type cloudAnswer struct {
	answer
	fn *sandbox.FunctionResult
}

func invoke(t *testing.T, srv *sandbox.Server, method, u, body string) cloudAnswer {
	t.Helper()
	a, err := do(t.Context(), srv.Client(), method, u, body)
	if err != nil {
		t.Fatalf("invokecloudfunction: %v", err)
	}
	ca := cloudAnswer{answer: a}
	var raw struct {
		RespData *string `json:"resp_data"`
	}
	if a.Status == http.StatusOK {
		if err := json.Unmarshal([]byte(a.Body), &raw); err != nil {
			t.Fatalf("answer %q: %v", a.Body, err)
		}
	}
	if raw.RespData != nil {
		ca.fn = new(sandbox.FunctionResult)
		if err := json.Unmarshal([]byte(*raw.RespData), ca.fn); err != nil {
			t.Fatalf("resp_data %q is not the function's JSON: %v", *raw.RespData, err)
		}
	}
	return ca
}

func TestInvokeCloudFunctionErrcodes(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{Orders: map[string]string{"W1": "T1"}})
	at := token(t, srv)
	env, fn := sandbox.DefaultCloudEnv, sandbox.DefaultCloudFunction
	ok := cloudEvent("W1", "T1", 1)
	for _, tc := range []struct {
		name, method, url, body string
		invoke                  int  // the invoke API's errcode
		function                int  // the function's errCode, when invoke is 0
		recorded                bool // the call is in the record
	}{
		{"ok", "POST", cloudURL(srv.URL, at, env, fn), ok, 0, 0, true},
		{"GET", "GET", cloudURL(srv.URL, at, env, fn), "", 43002, 0, false},
		{"access_token missing", "POST", cloudURL(srv.URL, "", env, fn), ok, 41001, 0, false},
		{"access_token unknown", "POST", cloudURL(srv.URL, "nope", env, fn), ok, 40001, 0, false},
		{"env missing", "POST", cloudURL(srv.URL, at, "", fn), ok, 40101, 0, false},
		{"name missing", "POST", cloudURL(srv.URL, at, env, ""), ok, 40101, 0, false},
		{"env unknown", "POST", cloudURL(srv.URL, at, "other-env", fn), ok, -501005, 0, false},
		{"function unknown", "POST", cloudURL(srv.URL, at, env, "other"), ok, -501009, 0, false},
		{"empty body", "POST", cloudURL(srv.URL, at, env, fn), "", 44002, 0, true},
		{"not JSON", "POST", cloudURL(srv.URL, at, env, fn), "waybillId=W1", 0, 47001, true},
		{"snake_case spelling", "POST", cloudURL(srv.URL, at, env, fn), event("W1", "T1", 2), 0, 47001, true},
		{"actionType unknown", "POST", cloudURL(srv.URL, at, env, fn), strings.Replace(ok, "200001", "100004", 1), 0, 47001, true},
		{"waybill unknown", "POST", cloudURL(srv.URL, at, env, fn), cloudEvent("W2", "T1", 3), 0, 40199, true},
		{"token incorrect", "POST", cloudURL(srv.URL, at, env, fn), cloudEvent("W1", "T2", 4), 0, 9300507, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats()
			n0 := len(srv.Calls("W1")) + len(srv.Calls("W2")) + len(srv.Calls(""))
			a := invoke(t, srv, tc.method, tc.url, tc.body)
			if a.Status != http.StatusOK || a.ErrCode != tc.invoke {
				t.Fatalf("got HTTP %d errcode %d (%s), want errcode %d", a.Status, a.ErrCode, a.ErrMsg, tc.invoke)
			}
			if tc.invoke != 0 {
				if a.fn != nil {
					t.Fatalf("invoke error %d with resp_data %+v", a.ErrCode, *a.fn)
				}
			} else {
				if a.ErrMsg != "ok" || a.fn == nil || a.fn.ErrCode != tc.function {
					t.Fatalf("errmsg %q, function result %+v, want errCode %d", a.ErrMsg, a.fn, tc.function)
				}
				wantMsg := "openapi.logistics.updatePath:ok"
				if tc.function != 0 {
					wantMsg = "openapi.logistics.updatePath:fail "
				}
				if !strings.HasPrefix(a.fn.ErrMsg, wantMsg) {
					t.Fatalf("function errMsg %q, want it to start %q", a.fn.ErrMsg, wantMsg)
				}
			}
			st := srv.Stats()
			if st.UpdateCalls-before.UpdateCalls != 1 || st.CloudCalls-before.CloudCalls != 1 {
				t.Fatalf("stats counted %d calls, %d cloud calls; want 1 and 1",
					st.UpdateCalls-before.UpdateCalls, st.CloudCalls-before.CloudCalls)
			}
			n := len(srv.Calls("W1")) + len(srv.Calls("W2")) + len(srv.Calls("")) - n0
			if want := map[bool]int{true: 1, false: 0}[tc.recorded]; n != want {
				t.Fatalf("recorded %d calls, want %d", n, want)
			}
		})
	}
	first := srv.Calls("W1")[0]
	if !first.Delivered() || first.Via != sandbox.ViaCloudCall || first.Token != "T1" ||
		first.ActionTime != 1700000001 || first.ActionType != 200001 || first.ActionMsg != "step 1" {
		t.Fatalf("first call of W1: %+v", first)
	}
}

func TestInvokeCloudFunctionCloudBaseDisabled(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true, CloudBaseDisabled: true, CloudEnv: "prod-1a2b", CloudFunction: "deliver"})
	at := token(t, srv)
	if a := invoke(t, srv, "POST", cloudURL(srv.URL, at, "prod-1a2b", "deliver"), cloudEvent("W", "T", 1)); a.ErrCode != 85088 {
		t.Fatalf("errcode %d (%s), want 85088", a.ErrCode, a.ErrMsg)
	}
	if len(srv.Calls("W")) != 0 {
		t.Fatal("a call refused by the invoke API was recorded")
	}
	// path/update is not Cloud Base's business.
	if a := update(t, srv, at, event("W", "T", 2)); a.ErrCode != 0 {
		t.Fatalf("path/update: errcode %d, want 0", a.ErrCode)
	}
}

func TestInvokeCloudFunctionConfiguredTarget(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true, CloudEnv: "prod-1a2b", CloudFunction: "deliver"})
	at := token(t, srv)
	if a := invoke(t, srv, "POST", cloudURL(srv.URL, at, "prod-1a2b", "deliver"), cloudEvent("W", "T", 1)); a.ErrCode != 0 || a.fn == nil || a.fn.ErrCode != 0 {
		t.Fatalf("configured env and name: %+v %+v", a.answer, a.fn)
	}
	if a := invoke(t, srv, "POST", cloudURL(srv.URL, at, sandbox.DefaultCloudEnv, "deliver"), cloudEvent("W", "T", 2)); a.ErrCode != -501005 {
		t.Fatalf("the default env when another is configured: errcode %d, want -501005", a.ErrCode)
	}
}

func TestInvokeCloudFunctionFaults(t *testing.T) {
	t.Parallel()
	clk := newClock()
	for _, tc := range []struct {
		name     string
		faults   sandbox.Faults
		status   int
		invoke   int
		function int
	}{
		{"outage", sandbox.Faults{OutageUntil: clk.Now().Add(time.Hour)}, 503, 0, 0},
		{"5xx", sandbox.Faults{HTTP5xxRate: 1}, 0, 0, 0},
		{"system error is the function's -1", sandbox.Faults{SystemErrorRate: 1}, 200, 0, -1},
		{"invoke error -1", sandbox.Faults{InvokeErrorRate: 1}, 200, -1, 0},
		{"invoke error -1000", sandbox.Faults{InvokeErrorRate: 1, InvokeErrcode: -1000}, 200, -1000, 0},
		{"invoke error before system error", sandbox.Faults{InvokeErrorRate: 1, SystemErrorRate: 1}, 200, -1, 0},
		{"minute quota is the function's 45011", sandbox.Faults{MinuteQuota: 1}, 200, 0, 45011},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, sandbox.Config{AcceptAnyWaybill: true, Faults: tc.faults, Now: clk.Now, Seed: 1})
			at := token(t, srv)
			u := cloudURL(srv.URL, at, sandbox.DefaultCloudEnv, sandbox.DefaultCloudFunction)
			if tc.faults.MinuteQuota > 0 {
				if a := invoke(t, srv, "POST", u, cloudEvent("W", "T", 0)); a.fn == nil || a.fn.ErrCode != 0 {
					t.Fatalf("call within the quota: %+v %+v", a.answer, a.fn)
				}
			}
			a := invoke(t, srv, "POST", u, cloudEvent("W", "T", 1))
			switch {
			case tc.status == 0 && (a.Status < 500 || a.Status > 504):
				t.Fatalf("HTTP %d, want a 5xx", a.Status)
			case tc.status != 0 && a.Status != tc.status:
				t.Fatalf("HTTP %d, want %d", a.Status, tc.status)
			case a.Status != http.StatusOK:
				if a.fn != nil {
					t.Fatalf("HTTP %d with a function result", a.Status)
				}
			case a.ErrCode != tc.invoke:
				t.Fatalf("invoke errcode %d, want %d", a.ErrCode, tc.invoke)
			case tc.invoke == 0 && (a.fn == nil || a.fn.ErrCode != tc.function):
				t.Fatalf("function result %+v, want errCode %d", a.fn, tc.function)
			}
			calls := srv.Calls("W")
			last := calls[len(calls)-1]
			if last.Via != sandbox.ViaCloudCall || last.HTTPStatus != a.Status || (a.Status == 200 && last.ErrCode != tc.invoke+tc.function) {
				t.Fatalf("recorded %+v for HTTP %d errcode %d/%d", last, a.Status, tc.invoke, tc.function)
			}
		})
	}
}

// TestBothTransportsShareTheRecord: calls of one waybill through either
// endpoint land in one record in arrival order, and the order check (the
// registered token) applies to both.
func TestBothTransportsShareTheRecord(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{Orders: map[string]string{"W": "T"}})
	at := token(t, srv)
	u := cloudURL(srv.URL, at, sandbox.DefaultCloudEnv, sandbox.DefaultCloudFunction)
	update(t, srv, at, event("W", "T", 1))
	invoke(t, srv, "POST", u, cloudEvent("W", "T", 2))
	update(t, srv, at, event("W", "T", 3))
	if a := invoke(t, srv, "POST", u, cloudEvent("W", "wrong", 4)); a.fn == nil || a.fn.ErrCode != 9300507 {
		t.Fatalf("wrong token through the cloud call: %+v %+v", a.answer, a.fn)
	}
	calls := srv.Calls("W")
	var got []string
	for _, c := range calls {
		got = append(got, fmt.Sprintf("%s:%s:%d", c.Via, c.ActionMsg, c.ErrCode))
	}
	want := []string{":step 1:0", "cloudcall:step 2:0", ":step 3:0", "cloudcall:step 4:9300507"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("record %v, want %v", got, want)
	}
	if d := srv.Delivered("W"); len(d) != 3 {
		t.Fatalf("%d delivered, want 3", len(d))
	}
	// The record as the admin endpoint shows it says which way each came.
	b := mustDo(t, srv, "GET", "/sandbox/received?waybill=W", "").Body
	if strings.Count(b, `"via":"cloudcall"`) != 2 {
		t.Fatalf("GET /sandbox/received: %s", b)
	}
}

func TestPutFaultsInvokeError(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{})
	if a := mustDo(t, srv, "PUT", "/sandbox/faults", `{"invoke_error_rate":0.5,"invoke_errcode":-1000}`); a.Status != 200 {
		t.Fatalf("PUT: HTTP %d %s", a.Status, a.Body)
	}
	if f := srv.Faults(); f.InvokeErrorRate != 0.5 || f.InvokeErrcode != -1000 {
		t.Fatalf("faults %+v", f)
	}
	if a := mustDo(t, srv, "PUT", "/sandbox/faults", `{"invoke_error_rate":2}`); a.Status != 400 {
		t.Fatalf("rate 2: HTTP %d, want 400", a.Status)
	}
}
