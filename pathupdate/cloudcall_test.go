package pathupdate_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// cloudClient is a cloudcall Client against the env's sandbox, for its
// default env and function unless cloudEnv/cloudFn say otherwise.
func (e *env) cloudClient(ts pathupdate.TokenSource, cloudEnv, cloudFn string) *pathupdate.Client {
	e.t.Helper()
	if cloudEnv == "" {
		cloudEnv = sandbox.DefaultCloudEnv
	}
	if cloudFn == "" {
		cloudFn = sandbox.DefaultCloudFunction
	}
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: e.srv.URL, Tokens: ts, HTTPClient: e.hc,
		Logger: e.logger(), Now: e.clk.Now,
		Transport: pathupdate.TransportCloudCall, CloudEnv: cloudEnv, CloudFunction: cloudFn})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

const invokePrefix = "tcb.invokeCloudFunction: "

func TestCloudCallOutcomes(t *testing.T) {
	t.Parallel()
	const evTok = "order-token-1"
	orders := map[string]string{"W1": evTok}
	anyWaybill := func(f sandbox.Faults) sandbox.Config { return sandbox.Config{AcceptAnyWaybill: true, Faults: f} }
	tests := []struct {
		name        string
		cfg         sandbox.Config
		ev          pathupdate.Event
		cloudEnv    string
		cloudFn     string
		before      int // delivered calls made first
		kind        pathupdate.Kind
		errcode     int
		status      func(int) bool
		invokeLevel bool // the errcode is the invoke API's (errmsg marked so)
		recorded    bool // the sandbox recorded the call with the event's fields
	}{
		{name: "delivered", cfg: sandbox.Config{Orders: orders}, ev: event("W1", evTok),
			kind: pathupdate.Delivered, status: is(200), recorded: true},
		{name: "40199 waybill not found", cfg: sandbox.Config{Orders: orders}, ev: event("W404", evTok),
			kind: pathupdate.Rejected, errcode: 40199, status: is(200), recorded: true},
		{name: "9300507 incorrect token", cfg: sandbox.Config{Orders: orders}, ev: event("W1", "not-the-token"),
			kind: pathupdate.Rejected, errcode: 9300507, status: is(200), recorded: true},
		{name: "function -1", cfg: anyWaybill(sandbox.Faults{SystemErrorRate: 1}), ev: event("W2", evTok),
			kind: pathupdate.Transient, errcode: -1, status: is(200), recorded: true},
		{name: "function 45011", cfg: anyWaybill(sandbox.Faults{MinuteQuota: 2}), ev: event("W3", evTok), before: 2,
			kind: pathupdate.Throttled, errcode: 45011, status: is(200), recorded: true},
		{name: "invoke -1", cfg: anyWaybill(sandbox.Faults{InvokeErrorRate: 1}), ev: event("W4", evTok),
			kind: pathupdate.Transient, errcode: -1, status: is(200), invokeLevel: true},
		{name: "invoke -1000", cfg: anyWaybill(sandbox.Faults{InvokeErrorRate: 1, InvokeErrcode: -1000}), ev: event("W5", evTok),
			kind: pathupdate.Transient, errcode: -1000, status: is(200), invokeLevel: true},
		{name: "invoke 85088 Cloud Base not enabled", cfg: sandbox.Config{AcceptAnyWaybill: true, CloudBaseDisabled: true}, ev: event("W6", evTok),
			kind: pathupdate.ConfigBroken, errcode: 85088, status: is(200), invokeLevel: true},
		{name: "unknown env", cfg: anyWaybill(sandbox.Faults{}), ev: event("W7", evTok), cloudEnv: "typo-env",
			kind: pathupdate.ConfigBroken, errcode: -501005, status: is(200), invokeLevel: true},
		{name: "unknown function", cfg: anyWaybill(sandbox.Faults{}), ev: event("W8", evTok), cloudFn: "typoFunction",
			kind: pathupdate.ConfigBroken, errcode: -501009, status: is(200), invokeLevel: true},
		{name: "HTTP 5xx", cfg: anyWaybill(sandbox.Faults{HTTP5xxRate: 1}), ev: event("W9", evTok),
			kind: pathupdate.Transient, status: func(s int) bool { return s >= 500 && s <= 504 }},
		{name: "outage 503", cfg: anyWaybill(sandbox.Faults{OutageUntil: newClock().Now().Add(time.Hour)}), ev: event("W10", evTok),
			kind: pathupdate.Transient, status: is(503)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.cfg)
			c := e.cloudClient(e.stable(), tt.cloudEnv, tt.cloudFn)
			ctx := context.Background()
			for i := range tt.before {
				if o := e.note(c.UpdatePath(ctx, event(tt.ev.WaybillID, tt.ev.Token))); o.Kind != pathupdate.Delivered {
					t.Fatalf("call %d before: %v", i, o)
				}
			}
			o := e.note(c.UpdatePath(ctx, tt.ev))
			if o.Kind != tt.kind || o.ErrCode != tt.errcode || !tt.status(o.HTTPStatus) || o.Err != nil {
				t.Fatalf("got %+v, want kind %v errcode %d and no Err", o, tt.kind, tt.errcode)
			}
			if got := strings.HasPrefix(o.ErrMsg, invokePrefix); got != tt.invokeLevel {
				t.Fatalf("errmsg %q: invoke-level mark %v, want %v", o.ErrMsg, got, tt.invokeLevel)
			}
			if o.HTTPStatus == 200 && !tt.invokeLevel && !strings.HasPrefix(o.ErrMsg, "openapi.logistics.updatePath:") {
				t.Fatalf("errmsg %q is not the function's", o.ErrMsg)
			}
			calls := e.srv.Calls(tt.ev.WaybillID)
			wantCalls := tt.before + 1
			if tt.cloudEnv != "" || tt.cloudFn != "" || tt.cfg.CloudBaseDisabled {
				wantCalls = 0 // refused by the invoke API before the function
			}
			if len(calls) != wantCalls {
				t.Fatalf("sandbox recorded %d calls, want %d: one attempt, no retry of its own", len(calls), wantCalls)
			}
			if st := e.srv.Stats(); st.CloudCalls != int64(tt.before+1) || st.CloudCalls != st.UpdateCalls {
				t.Fatalf("stats %+v: want %d calls, all through the cloud call", st, tt.before+1)
			}
			if tt.recorded {
				got := calls[len(calls)-1]
				if got.Via != sandbox.ViaCloudCall || got.Token != tt.ev.Token || got.ActionTime != tt.ev.ActionTime ||
					got.ActionType != int(tt.ev.ActionType) || got.ActionMsg != tt.ev.ActionMsg {
					t.Fatalf("sandbox received %+v for %+v", got, tt.ev)
				}
			}
		})
	}
}

// TestCloudCallTokenRefusedRefetchesOnce: an access_token the invoke API
// refuses is invalidated and the call made again once with a fresh one,
// by the same code as on the HTTPS path.
func TestCloudCallTokenRefusedRefetchesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	c := e.cloudClient(e.stable(), "", "")
	ctx := context.Background()
	if o := e.note(c.UpdatePath(ctx, event("W1", "t"))); o.Kind != pathupdate.Delivered {
		t.Fatalf("first call: %v", o)
	}
	e.srv.RevokeTokens() // the cached token is now refused with 40001
	if o := e.note(c.UpdatePath(ctx, event("W1", "t"))); o.Kind != pathupdate.Delivered {
		t.Fatalf("after revoke: %v, want Delivered after one refetch", o)
	}
	st := e.srv.Stats()
	if st.ByErrcode[40001] != 1 || st.StableTokensIssued != 2 || st.CloudCalls != 3 || st.Delivered != 2 {
		t.Fatalf("stats %+v: want one refusal, one refetch, three cloud calls", st)
	}

	// A token that stays refused: exactly one retry, then TokenInvalid.
	const bogus = "bogus-access-token-never-issued"
	e.addSecret(bogus)
	c2 := e.cloudClient(pathupdate.NewStaticTokenSource(bogus), "", "")
	o := e.note(c2.UpdatePath(ctx, event("W2", "t")))
	if o.Kind != pathupdate.TokenInvalid || o.ErrCode != 40001 || !strings.HasPrefix(o.ErrMsg, invokePrefix) {
		t.Fatalf("got %+v, want TokenInvalid 40001 from the invoke API", o)
	}
	if got := e.srv.Stats().ByErrcode[40001]; got != 3 {
		t.Fatalf("%d refusals in all, want 3: the earlier one, the call and exactly one retry", got)
	}
}

// fakeInvoke is a hand-made invoke API: it checks each request is what
// WeChat expects and answers with answer.
func fakeInvoke(t *testing.T, tok string, answer http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.URL.Path != "/tcb/invokecloudfunction" || q.Get("access_token") != tok ||
			q.Get("env") != "prod-env" || q.Get("name") != "updatePath" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("unexpected request %s %s (Content-Type %q)", r.Method, redactForTest(r.URL), r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		want := `{"token":"t","waybillId":"W1","actionTime":1700000000,"actionType":200001,"actionMsg":"到达 \u003c深圳\u003e"}`
		if string(b) != want {
			t.Errorf("body %s, want %s", b, want)
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func redactForTest(u *url.URL) string {
	q := u.Query()
	q.Del("access_token")
	return u.Path + "?" + q.Encode()
}

// invokeAnswer answers errcode 0 with resp_data, or without it when
// respData is nil.
func invokeAnswer(respData any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		a := map[string]any{"errcode": 0, "errmsg": "ok"}
		if respData != nil {
			a["resp_data"] = respData
		}
		_ = json.NewEncoder(w).Encode(a)
	}
}

func TestCloudCallOwnServerAnswers(t *testing.T) {
	t.Parallel()
	const tok = "static-access-token-abc"
	tests := []struct {
		name     string
		answer   http.HandlerFunc
		kind     pathupdate.Kind
		errcode  int
		errIs    error // nil: no Err, unless wantErr
		requests int32
		wantErr  bool
	}{
		{"function ok", invokeAnswer(`{"errCode":0,"errMsg":"openapi.logistics.updatePath:ok"}`), pathupdate.Delivered, 0, nil, 1, false},
		{"resp_data not JSON", invokeAnswer(`<html>oops</html>`), pathupdate.Transient, 0, pathupdate.ErrCloudFunctionResult, 1, false},
		{"resp_data a JSON string", invokeAnswer(`"done"`), pathupdate.Transient, 0, pathupdate.ErrCloudFunctionResult, 1, false},
		{"resp_data without errCode", invokeAnswer(`{"event":{"userInfo":{}}}`), pathupdate.Transient, 0, pathupdate.ErrCloudFunctionResult, 1, false},
		{"errCode a string", invokeAnswer(`{"errCode":"0"}`), pathupdate.Transient, 0, pathupdate.ErrCloudFunctionResult, 1, false},
		{"resp_data missing", invokeAnswer(nil), pathupdate.Transient, 0, pathupdate.ErrCloudFunctionResult, 1, false},
		{"resp_data empty", invokeAnswer(""), pathupdate.Transient, 0, pathupdate.ErrCloudFunctionResult, 1, false},
		{"resp_data not a string", invokeAnswer(map[string]int{"errCode": 0}), pathupdate.Transient, 0, nil, 1, true},
		{"answer not JSON", text(200, "<html>Bad Gateway</html>"), pathupdate.Transient, 0, nil, 1, true},
		{"invoke 44002 empty body", text(200, `{"errcode":44002,"errmsg":"empty post data"}`), pathupdate.Rejected, 44002, nil, 1, false},
		{"invoke 40014 twice", text(200, `{"errcode":40014,"errmsg":"invalid access_token"}`), pathupdate.TokenInvalid, 40014, nil, 2, false},
		{"invoke 42001 twice", text(200, `{"errcode":42001,"errmsg":"access_token expired"}`), pathupdate.TokenInvalid, 42001, nil, 2, false},
		{"invoke 41001 twice", text(200, `{"errcode":41001,"errmsg":"access_token missing"}`), pathupdate.TokenInvalid, 41001, nil, 2, false},
		{"invoke 40101 missing parameter", text(200, `{"errcode":40101,"errmsg":"missing parameter"}`), pathupdate.ConfigBroken, 40101, nil, 1, false},
		{"invoke -501003 quota", text(200, `{"errcode":-501003,"errmsg":"exceed request limit"}`), pathupdate.Throttled, -501003, nil, 1, false},
		{"function 40001 is the cloud's own token", invokeAnswer(`{"errCode":40001,"errMsg":"invalid credential"}`), pathupdate.Transient, 40001, nil, 1, false},
		{"function -604101 no permission", invokeAnswer(`{"errCode":-604101,"errMsg":"function has no permission to call this API"}`), pathupdate.ConfigBroken, -604101, nil, 1, false},
		{"function 48001 unauthorised", invokeAnswer(`{"errCode":48001,"errMsg":"api unauthorized"}`), pathupdate.ConfigBroken, 48001, nil, 1, false},
		{"function 47001 from its input check", invokeAnswer(`{"errCode":47001,"errMsg":"data format error: actionMsg is missing"}`), pathupdate.Rejected, 47001, nil, 1, false},
		{"function -504002", invokeAnswer(`{"errCode":-504002,"errMsg":"functions execute fail"}`), pathupdate.Transient, -504002, nil, 1, false},
		{"function errmsg echoing the access_token", invokeAnswer(`{"errCode":-1,"errMsg":"system error for ` + tok + `"}`), pathupdate.Transient, -1, nil, 1, false},
		{"gateway 502", text(502, "bad gateway"), pathupdate.Transient, 0, nil, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, n := fakeInvoke(t, tok, tt.answer)
			c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL, Tokens: pathupdate.NewStaticTokenSource(tok),
				Transport: pathupdate.TransportCloudCall, CloudEnv: "prod-env", CloudFunction: "updatePath"})
			if err != nil {
				t.Fatal(err)
			}
			ev := pathupdate.Event{Token: "t", WaybillID: "W1", ActionTime: 1_700_000_000, ActionType: pathupdate.ActionInTransit, ActionMsg: "到达 <深圳>"}
			o := c.UpdatePath(context.Background(), ev)
			if o.Kind != tt.kind || o.ErrCode != tt.errcode {
				t.Fatalf("got %+v, want %v errcode %d", o, tt.kind, tt.errcode)
			}
			if tt.errIs != nil && !errors.Is(o.Err, tt.errIs) {
				t.Fatalf("Err %v, want one matching %v", o.Err, tt.errIs)
			}
			if wantErr := tt.wantErr || tt.errIs != nil; (o.Err != nil) != wantErr {
				t.Fatalf("Err %v, want one: %v", o.Err, wantErr)
			}
			if got := n.Load(); got != tt.requests {
				t.Fatalf("%d requests, want %d", got, tt.requests)
			}
			for _, s := range []string{o.String(), o.ErrMsg, errString(o.Err)} {
				if strings.Contains(s, tok) {
					t.Fatalf("access_token in %q", s)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCloudCallConnectionRefusedIsScrubbed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	const tok = "a-static-token-that-must-not-leak"
	e.addSecret(tok)
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: deadURL, Tokens: pathupdate.NewStaticTokenSource(tok),
		Logger: e.logger(), Transport: pathupdate.TransportCloudCall, CloudEnv: "prod-env", CloudFunction: "updatePath"})
	if err != nil {
		t.Fatal(err)
	}
	o := e.note(c.UpdatePath(context.Background(), event("W1", "t")))
	var ue *url.Error
	if o.Kind != pathupdate.Transient || !errors.Is(o.Err, syscall.ECONNREFUSED) || !errors.As(o.Err, &ue) {
		t.Fatalf("got %+v, want Transient wrapping ECONNREFUSED", o)
	}
	if !strings.Contains(ue.URL, "access_token=REDACTED") || !strings.Contains(ue.URL, "env=prod-env&name=updatePath") {
		t.Fatalf("transport error URL %q: want the token redacted and env and name kept", ue.URL)
	}
}

func TestCloudCallCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	c := e.cloudClient(e.stable(), "", "")
	if o := e.note(c.UpdatePath(context.Background(), event("W1", "t"))); o.Kind != pathupdate.Delivered {
		t.Fatalf("warm-up: %v", o)
	}
	e.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(time.Minute)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan pathupdate.Outcome, 1)
	go func() { done <- c.UpdatePath(ctx, event("W2", "t")) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.srv.Calls("W2")) == 0 { // no event to wait on: poll the sandbox's record
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the sandbox")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	o := e.note(<-done)
	if o.Kind != pathupdate.Transient || !errors.Is(o.Err, context.Canceled) || o.HTTPStatus != 0 {
		t.Fatalf("mid-flight: %+v", o)
	}
}

func TestNewClientValidateCloudCall(t *testing.T) {
	t.Parallel()
	ts := pathupdate.NewStaticTokenSource("t")
	cloud := func(mod func(*pathupdate.ClientConfig)) pathupdate.ClientConfig {
		c := pathupdate.ClientConfig{Tokens: ts, Transport: pathupdate.TransportCloudCall, CloudEnv: "e", CloudFunction: "f"}
		mod(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  pathupdate.ClientConfig
		want []string
	}{
		{"unknown transport", pathupdate.ClientConfig{Tokens: ts, Transport: "grpc"}, []string{"ClientConfig.Transport", `"grpc"`}},
		{"no env", cloud(func(c *pathupdate.ClientConfig) { c.CloudEnv = "" }), []string{"ClientConfig.CloudEnv", "environment id"}},
		{"no function", cloud(func(c *pathupdate.ClientConfig) { c.CloudFunction = "" }), []string{"ClientConfig.CloudFunction", "updatePath"}},
		{"short timeout", cloud(func(c *pathupdate.ClientConfig) { c.Timeout = 2 * time.Second }), []string{"ClientConfig.Timeout", "5s"}},
		{"short HTTP client timeout", cloud(func(c *pathupdate.ClientConfig) { c.HTTPClient = &http.Client{Timeout: time.Second} }), []string{"ClientConfig.HTTPClient"}},
	}
	for _, tt := range tests {
		_, err := pathupdate.NewClient(tt.cfg)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want one naming %s", tt.name, err, w)
			}
		}
	}
	if _, err := pathupdate.NewClient(cloud(func(*pathupdate.ClientConfig) {})); err != nil {
		t.Errorf("cloudcall with env and function: %v", err)
	}
	// The HTTPS transport needs neither, and a short timeout is its business.
	if _, err := pathupdate.NewClient(pathupdate.ClientConfig{Tokens: ts, Transport: pathupdate.TransportHTTPS, Timeout: time.Second}); err != nil {
		t.Errorf("https: %v", err)
	}
	if got := (pathupdate.ClientConfig{}).WithDefaults().Transport; got != pathupdate.TransportHTTPS {
		t.Errorf("default transport %q, want %q", got, pathupdate.TransportHTTPS)
	}
}
