package pathupdate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestUpdatePathAnswerMustBeAnObject: an HTTP 200 answer that is JSON but
// not an object, or whose errcode is not a number, is not WeChat talking.
// It used to count as errcode 0 (null, or {"errcode":null}): found by the
// chaos suite, where a gateway answering "null" to a -1 made the worker
// ack an event WeChat never took, and deliver the next one of its waybill.
// Now it is Transient and the event is tried again; {} (errcode left out)
// stays a delivery, as FACTS.md says some APIs answer.
func TestUpdatePathAnswerMustBeAnObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		kind pathupdate.Kind
	}{
		{"null", pathupdate.Transient},
		{" null ", pathupdate.Transient},
		{"[]", pathupdate.Transient},
		{`["errcode",0]`, pathupdate.Transient},
		{`"ok"`, pathupdate.Transient},
		{"0", pathupdate.Transient},
		{"true", pathupdate.Transient},
		{`{"errcode":null}`, pathupdate.Transient},
		{`{"errcode":"0"}`, pathupdate.Transient},
		{`{"errcode":0.5}`, pathupdate.Transient},
		{`{"errcode":{}}`, pathupdate.Transient},
		{`{"errcode":0,"errmsg":"o`, pathupdate.Transient},
		{`{}`, pathupdate.Delivered},
		{" \n{\"errcode\":0,\"errmsg\":\"ok\"}\n", pathupdate.Delivered},
		{`{"errcode":-1,"errmsg":"system error"}`, pathupdate.Transient},
		{`{"errcode":40199,"errmsg":"waybill not found"}`, pathupdate.Rejected},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			const tok = "static-access-token-abc"
			srv, _ := ownServer(t, tok, text(200, tt.body))
			c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL, Tokens: pathupdate.NewStaticTokenSource(tok)})
			if err != nil {
				t.Fatal(err)
			}
			o := c.UpdatePath(context.Background(), event("W1", "t"))
			if o.Kind != tt.kind {
				t.Fatalf("answer %q: %v, want %v", tt.body, o, tt.kind)
			}
			if tt.kind == pathupdate.Transient && o.ErrCode == 0 && o.Err == nil {
				t.Fatalf("answer %q: Transient without a cause: %+v", tt.body, o)
			}
		})
	}
}

// FuzzUpdatePathAnswer feeds arbitrary HTTP 200 bodies to the client's
// answer decoding. It must never panic; Delivered only for a JSON object
// whose errcode is absent or the integer 0; the access token never in the
// outcome's text, whatever the body echoes.
// Seeds: testdata/fuzz/FuzzUpdatePathAnswer.
func FuzzUpdatePathAnswer(f *testing.F) {
	const tok = "fuzz-access-token-0123456789"
	for _, s := range []string{`{"errcode":0,"errmsg":"ok"}`, `{}`, `null`, `{"errcode":40199,"errmsg":"` + tok + `"}`} {
		f.Add([]byte(s))
	}
	var (
		mu   sync.Mutex
		body []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		b := body
		mu.Unlock()
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL, Tokens: pathupdate.NewStaticTokenSource(tok)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		mu.Lock()
		body = answer
		mu.Unlock()
		start := time.Now()
		o := c.UpdatePath(context.Background(), event("W1", "t"))
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("answer %q took %s: %v", answer, d, o)
		}
		switch o.Kind {
		case pathupdate.Delivered, pathupdate.Rejected, pathupdate.Transient, pathupdate.TokenInvalid,
			pathupdate.ConfigBroken, pathupdate.Throttled:
		default:
			t.Fatalf("answer %q: unknown kind %v", answer, o.Kind)
		}
		if o.Kind == pathupdate.Delivered {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(answer, &m); err != nil || m == nil {
				t.Fatalf("answer %q delivered but is not a JSON object: %v", answer, err)
			}
			if raw, ok := m["errcode"]; ok && strings.TrimSpace(string(raw)) != "0" {
				var n int
				if json.Unmarshal(raw, &n) != nil || n != 0 || string(raw) == "null" {
					t.Fatalf("answer %q delivered with errcode %s", answer, raw)
				}
			}
		}
		if strings.Contains(o.String(), tok) {
			t.Fatalf("answer %q: the access token shows in %q", answer, o)
		}
	})
}
