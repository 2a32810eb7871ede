package pathupdate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// openClient is a Client with no token source against the env's sandbox,
// which must be in open-interface mode.
func (e *env) openClient() *pathupdate.Client {
	e.t.Helper()
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: e.srv.URL, Tokens: pathupdate.NewNoTokenSource(),
		HTTPClient: e.hc, Logger: e.logger(), Now: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestOpenInterfaceOutcomes: every answer of the open-interface service is
// classified so that none dead-letters an event (never Rejected), the
// configuration ones name their fix in Blocked, and updatePath's own
// answers keep the Kind they have on the HTTPS path.
func TestOpenInterfaceOutcomes(t *testing.T) {
	t.Parallel()
	const evTok = "order-token-1"
	tests := []struct {
		answer  sandbox.OpenInterfaceAnswer
		waybill string
		kind    pathupdate.Kind
		errcode int
		status  int
		fix     string // in Blocked's error; "" when Blocked must be nil
	}{
		{answer: sandbox.OpenInterfacePass, waybill: "W1", kind: pathupdate.Delivered, status: 200},
		{answer: sandbox.OpenInterfacePass, waybill: "UNKNOWN", kind: pathupdate.Rejected, errcode: 40199, status: 200},
		{answer: sandbox.OpenInterfaceServiceOff, waybill: "W1", kind: pathupdate.Unavailable, errcode: 41001, status: 200, fix: "switch on 开放接口服务"},
		{answer: sandbox.OpenInterfaceNotWhitelisted, waybill: "W1", kind: pathupdate.ConfigBroken, errcode: 85107, status: 200, fix: "add /cgi-bin/express/delivery/path/update to the open-interface service's whitelist"},
		{answer: sandbox.OpenInterfaceNotReady, waybill: "W1", kind: pathupdate.Unavailable, errcode: 85113, status: 200, fix: "still initialising"},
		{answer: sandbox.OpenInterfaceLinkError, waybill: "W1", kind: pathupdate.Unavailable, errcode: 85112, status: 200, fix: "link failure"},
		{answer: sandbox.OpenInterfaceGatewayError, waybill: "W1", kind: pathupdate.Unavailable, status: 200, fix: "link failure"},
		{answer: sandbox.OpenInterfaceUnauthorized, waybill: "W1", kind: pathupdate.ConfigBroken, errcode: 48001, status: 200, fix: "no permission for logistics.updatePath"},
		{answer: sandbox.OpenInterfaceBadGateway, waybill: "W1", kind: pathupdate.Unavailable, status: 502, fix: "on the open-interface service's whitelist"},
	}
	for _, tt := range tests {
		t.Run(string(tt.answer)+"/"+tt.waybill, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sandbox.Config{OpenInterface: true, Orders: map[string]string{"W1": evTok}})
			if err := e.srv.SetOpenInterfaceAnswer(tt.answer); err != nil {
				t.Fatal(err)
			}
			c := e.openClient()
			o := c.UpdatePath(context.Background(), event(tt.waybill, evTok))
			e.note(o)
			if o.Kind != tt.kind || o.ErrCode != tt.errcode || o.HTTPStatus != tt.status {
				t.Fatalf("outcome %v (errcode %d, HTTP %d): want %v, errcode %d, HTTP %d", o, o.ErrCode, o.HTTPStatus, tt.kind, tt.errcode, tt.status)
			}
			err := c.Blocked()
			switch {
			case tt.fix == "" && err != nil:
				t.Fatalf("Blocked = %v after %v, want nil", err, o)
			case tt.fix != "" && (err == nil || !strings.Contains(err.Error(), tt.fix)):
				t.Fatalf("Blocked = %v after %v, want it to name the fix %q", err, o, tt.fix)
			}
			if got := e.spy.tokens(); len(got) != 0 || e.srv.Stats().StableTokenCalls+e.srv.Stats().ClassicTokenCalls != 0 {
				t.Fatalf("a token was fetched (%d seen): the open-interface path needs none", len(got))
			}
		})
	}
}

// TestOpenInterfaceEscalates: 41001 and HTTP 502 are Unavailable while the
// service may still be coming into effect, ConfigBroken once they have
// lasted OpenInterfaceGrace with no event answered, and an answered event
// starts the count again and clears Blocked.
func TestOpenInterfaceEscalates(t *testing.T) {
	t.Parallel()
	for _, answer := range []sandbox.OpenInterfaceAnswer{sandbox.OpenInterfaceServiceOff, sandbox.OpenInterfaceBadGateway} {
		t.Run(string(answer), func(t *testing.T) {
			t.Parallel()
			const evTok = "order-token-1"
			e := newEnv(t, sandbox.Config{OpenInterface: true, Orders: map[string]string{"W1": evTok}})
			c := e.openClient()
			call := func() pathupdate.Outcome { return c.UpdatePath(context.Background(), event("W1", evTok)) }
			must := func(want pathupdate.Kind) {
				t.Helper()
				if o := call(); o.Kind != want {
					t.Fatalf("outcome %v, want %v", o, want)
				}
			}
			for range 2 { // the second round: after a delivery, the grace starts anew
				if err := e.srv.SetOpenInterfaceAnswer(answer); err != nil {
					t.Fatal(err)
				}
				must(pathupdate.Unavailable)
				e.clk.Advance(pathupdate.OpenInterfaceGrace - 1)
				must(pathupdate.Unavailable)
				e.clk.Advance(1)
				must(pathupdate.ConfigBroken)
				if c.Blocked() == nil {
					t.Fatal("Blocked is nil while every call fails")
				}
				if err := e.srv.SetOpenInterfaceAnswer(sandbox.OpenInterfacePass); err != nil {
					t.Fatal(err)
				}
				must(pathupdate.Delivered)
				if err := c.Blocked(); err != nil {
					t.Fatalf("Blocked = %v after a delivery", err)
				}
			}
		})
	}
}

// TestOpenInterfaceCallCarriesNoToken: the request has no access_token
// parameter at all (the sandbox in this mode refuses one that has it), and
// a client with a token source pointed at it is refused with 40001, which
// waits rather than dead-letters.
func TestOpenInterfaceCallCarriesNoToken(t *testing.T) {
	t.Parallel()
	const evTok = "order-token-1"
	e := newEnv(t, sandbox.Config{OpenInterface: true, Orders: map[string]string{"W1": evTok}})
	var queries []string
	hc := &http.Client{Transport: queryRecorder{base: e.hc.Transport, queries: &queries}}
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: e.srv.URL, Tokens: pathupdate.NewNoTokenSource(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.UpdatePath(context.Background(), event("W1", evTok)); o.Kind != pathupdate.Delivered {
		t.Fatalf("outcome %v, want delivered", o)
	}
	if len(queries) != 1 || queries[0] != "" {
		t.Fatalf("queries %q: want one call with no query", queries)
	}
	stable, err := pathupdate.NewStableTokenSource(e.tokenConfig())
	if err != nil {
		t.Fatal(err)
	}
	withToken, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: e.srv.URL, Tokens: stable, HTTPClient: e.hc})
	if err != nil {
		t.Fatal(err)
	}
	o := withToken.UpdatePath(context.Background(), event("W1", evTok))
	e.note(o)
	if o.Kind != pathupdate.TokenInvalid || o.ErrCode != 40001 || !strings.Contains(o.ErrMsg, "--token-source none") {
		t.Fatalf("outcome %v with a token: want token_invalid 40001 naming --token-source none", o)
	}
}

// TestOpenInterfaceConfig: calling without a token refuses the settings it
// cannot work with, naming the fix.
func TestOpenInterfaceConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  pathupdate.ClientConfig
		want string // "" when valid
	}{
		{name: "http api base", cfg: pathupdate.ClientConfig{APIBase: pathupdate.OpenInterfaceAPIBase}},
		{name: "default https api base", cfg: pathupdate.ClientConfig{}, want: "APIBase: \"https://api.weixin.qq.com\" with no access_token"},
		{name: "cloudcall", cfg: pathupdate.ClientConfig{APIBase: pathupdate.OpenInterfaceAPIBase, Transport: pathupdate.TransportCloudCall, CloudEnv: "e", CloudFunction: "f"},
			want: "Transport: cloudcall needs an access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Tokens = pathupdate.NewNoTokenSource()
			_, err := pathupdate.NewClient(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("NewClient: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("NewClient: %v, want an error with %q", err, tt.want)
			}
		})
	}
	ts := pathupdate.TokenSourceConfig{Kind: pathupdate.TokenSourceNone, TokenConfig: pathupdate.TokenConfig{AppID: "wx1", AppSecret: "s"}}
	if err := ts.Validate(); err != nil {
		t.Fatalf("none with credentials: %v, want valid (they are only unused)", err)
	}
	if got := strings.Join(ts.Unused(), ","); got != "AppID,AppSecret" {
		t.Fatalf("Unused = %q, want AppID,AppSecret", got)
	}
	if got := (pathupdate.TokenSourceConfig{Kind: pathupdate.TokenSourceStable, TokenConfig: pathupdate.TokenConfig{AppID: "wx1"}}).Unused(); got != nil {
		t.Fatalf("Unused of stable = %q, want nil", got)
	}
}

// queryRecorder records the query of every request (one at a time).
type queryRecorder struct {
	base    http.RoundTripper
	queries *[]string
}

func (q queryRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	*q.queries = append(*q.queries, r.URL.RawQuery)
	return q.base.RoundTrip(r)
}

// TestOpenInterfaceHasNoQuota: getApiQuota is not callable without a token,
// so a client with none says so without calling.
func TestOpenInterfaceHasNoQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{OpenInterface: true})
	if _, err := e.openClient().APIQuota(context.Background()); !errors.Is(err, pathupdate.ErrQuotaNeedsToken) {
		t.Fatalf("APIQuota: %v, want ErrQuotaNeedsToken", err)
	}
	if st := e.srv.Stats(); st.UpdateCalls != 0 {
		t.Fatalf("stats %+v: no call expected", st)
	}
}
