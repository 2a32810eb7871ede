package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

// testToken is the bearer token of every test gateway; setup fails the
// test if it ever shows up in the gateway's log.
const testToken = "gw-test-token-0123456789abcdef"

// bundle is what a gateway test needs: a real JetStream server (with the
// streams unless asked otherwise) and a gateway Server on 127.0.0.1:0
// publishing to it.
type bundle struct {
	js   jetstream.JetStream
	srv  *gateway.Server
	url  string // the endpoint: srv.URL() + gateway.Path
	logs *natstest.SyncBuffer
}

type setupOpts struct {
	cfg        gateway.Config
	noStreams  bool
	nc         *nats.Conn    // connection to publish on; default an in-process one to a new server
	ackTimeout time.Duration // of the Publisher; default its own
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	nc, js := o.nc, jetstream.JetStream(nil)
	if nc == nil {
		nc, js = natstest.Connect(t, natstest.Start(t))
	} else {
		var err error
		if js, err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
	}
	if !o.noStreams {
		if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{AckTimeout: o.ackTimeout})
	if err != nil {
		t.Fatal(err)
	}
	logs := &natstest.SyncBuffer{}
	cfg := o.cfg
	cfg.Addr = "127.0.0.1:0"
	if cfg.Token == "" && !cfg.AllowNoAuth {
		cfg.Token = testToken
	}
	if cfg.Connected == nil {
		cfg.Connected = nc.IsConnected
	}
	cfg.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	srv, err := gateway.NewServer(pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("the bearer token is in the gateway's log:\n%s", logs.String())
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &bundle{js: js, srv: srv, url: srv.URL() + gateway.Path, logs: logs}
}

// reply is one HTTP answer of the gateway.
type reply struct {
	code int
	hdr  http.Header
	body []byte
}

func (r reply) results(t *testing.T) gateway.Response {
	t.Helper()
	var resp gateway.Response
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("answer %d is not a results body: %v: %s", r.code, err, r.body)
	}
	return resp
}

func (r reply) errorMsg(t *testing.T) string {
	t.Helper()
	var e gateway.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("answer %d is not an error body: %v: %s", r.code, err, r.body)
	}
	return e.Error
}

// header values for post; an empty value removes the default.
type hdrs map[string]string

// post sends body to the gateway with the right token and JSON content
// type unless hdr says otherwise, and checks the answer against
// docs/openapi/gateway.yaml.
func (b *bundle) post(t *testing.T, body string, hdr hdrs) reply {
	t.Helper()
	return do(t, http.MethodPost, b.url, body, hdr)
}

func do(t *testing.T, method, url, body string, hdr hdrs) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{code: res.StatusCode, hdr: res.Header, body: data}
	checkAgainstOpenAPI(t, req, r)
	return r
}

// event returns a valid snake_case event of waybill w; n varies it.
func event(w string, n int) string {
	return fmt.Sprintf(`{"token":"tk-%s","waybill_id":%q,"action_time":%d,"action_type":200001,"action_msg":"step %d"}`,
		w, w, 1_767_225_600+n, n)
}

func array(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// stored returns the events the trace stream holds, in stream order.
func stored(t *testing.T, js jetstream.JetStream) []pathupdate.Event {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var evs []pathupdate.Event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get seq %d: %v", seq, err)
		}
		ev, err := pathupdate.DecodeEvent(m.Data)
		if err != nil {
			t.Fatalf("seq %d holds no valid event: %v", seq, err)
		}
		evs = append(evs, ev)
	}
	return evs
}
