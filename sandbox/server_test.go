package sandbox_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

func TestServerCloseIdempotent(t *testing.T) {
	t.Parallel()
	srv := sandbox.NewServer(sandbox.Config{})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q", srv.URL)
	}
	token(t, srv)
	srv.Close()
	srv.Close()
	if _, err := do(t.Context(), srv.Client(), http.MethodGet, srv.URL+"/sandbox/stats", ""); err == nil {
		t.Fatal("a closed server answered")
	}
}

// TestServerCloseEndsLatency: Close does not wait out an injected latency.
func TestServerCloseEndsLatency(t *testing.T) {
	t.Parallel()
	srv := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	at := token(t, srv)
	srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(time.Hour)})
	errc := make(chan error, 1)
	go func() {
		_, err := do(context.Background(), srv.Client(), http.MethodPost, updateURL(srv.URL, at), event("W", "T", 1))
		errc <- err
	}()
	waitFor(t, "the call to sit in the latency", func() bool { return len(srv.Calls("W")) == 1 })
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the latency")
	}
	if err := <-errc; err == nil {
		t.Fatal("the call got an answer from a closed server")
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.Listen("127.0.0.1:0", sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := sandbox.Listen(strings.TrimPrefix(srv.URL, "http://"), sandbox.Config{}); err == nil {
		t.Fatal("listening on a taken port worked")
	}
	if _, err := sandbox.Listen("127.0.0.1:0", sandbox.Config{TokenTTL: time.Millisecond}); err == nil || !strings.Contains(err.Error(), "TokenTTL") {
		t.Fatalf("bad config: %v, want an error naming TokenTTL", err)
	}
}

func TestNewServerPanicsOnBadConfig(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "Faults") {
			t.Fatalf("recovered %v, want a panic naming Faults", r)
		}
	}()
	srv := sandbox.NewServer(sandbox.Config{Faults: sandbox.Faults{SystemErrorRate: 3}})
	srv.Close()
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  sandbox.Config
		want string
	}{
		{sandbox.Config{}, ""},
		{sandbox.Config{TokenTTL: 10 * time.Second, ClassicGrace: -1, StableRenewWindow: -1}, ""},
		{sandbox.Config{TokenTTL: 500 * time.Millisecond}, "TokenTTL"},
		{sandbox.Config{TokenTTL: time.Minute, StableRenewWindow: time.Minute}, "StableRenewWindow"},
		{sandbox.Config{Orders: map[string]string{"W": ""}}, "Orders"},
		{sandbox.Config{Faults: sandbox.Faults{MinuteQuota: -1}}, "minute_quota"},
	} {
		_, err := sandbox.New(tc.cfg)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("New(%+v): %v, want an error naming %q", tc.cfg, err, tc.want)
		}
	}
	c := sandbox.Config{}.WithDefaults()
	if c.AppID != sandbox.DefaultAppID || c.AppSecret != sandbox.DefaultAppSecret || c.TokenTTL != sandbox.DefaultTokenTTL ||
		c.ClassicGrace != sandbox.DefaultClassicGrace || c.StableRenewWindow != 5*time.Minute || c.Now == nil {
		t.Fatalf("defaults %+v", c)
	}
}

// TestClassicGraceNegative: with no grace a replaced token dies at once.
func TestClassicGraceNegative(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{ClassicGrace: -1, AcceptAnyWaybill: true})
	first := classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret).AccessToken
	classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret)
	if a := update(t, srv, first, event("W", "T", 1)); a.ErrCode != 40001 {
		t.Fatalf("replaced token with no grace: errcode %d, want 40001", a.ErrCode)
	}
}
