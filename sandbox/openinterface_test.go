package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/sandbox"
)

// TestOpenInterfaceMode: path/update takes calls without access_token and
// refuses those with one; the answers set on demand come back as WeChat's
// Cloud Hosting FAQ describes them, counted but not recorded; the admin
// endpoint refuses what it does not know.
func TestOpenInterfaceMode(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewServer(sandbox.Config{OpenInterface: true, Orders: map[string]string{"W1": "tok"}})
	defer sb.Close()
	hc := sb.Client()
	body := `{"token":"tok","waybill_id":"W1","action_time":1700000000,"action_type":100001,"action_msg":"picked up"}`
	post := func(query string) (int, http.Header, map[string]any) {
		t.Helper()
		resp, err := hc.Post(sb.URL+sandbox.PathUpdatePath+query, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &a)
		return resp.StatusCode, resp.Header, a
	}
	admin := func(method, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, sb.URL+"/sandbox/open-interface", strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	status, h, a := post("")
	if status != 200 || a["errcode"] != 0.0 || h.Get("X-Openapi-Seqid") == "" {
		t.Fatalf("call without access_token: HTTP %d %v (seqid %q), want errcode 0 with x-openapi-seqid", status, a, h.Get("X-Openapi-Seqid"))
	}
	if c := sb.Calls("W1"); len(c) != 1 || c[0].Via != sandbox.ViaOpenInterface || !c[0].Delivered() {
		t.Fatalf("recorded %+v, want one delivered call via %s", c, sandbox.ViaOpenInterface)
	}
	if _, _, a := post("?access_token=abc"); a["errcode"] != 40001.0 || !strings.Contains(a["errmsg"].(string), "--token-source none") {
		t.Fatalf("call with access_token answered %v, want 40001 naming --token-source none", a)
	}

	for _, tt := range []struct {
		answer  string
		status  int
		errcode any
	}{
		{"41001", 200, 41001.0}, {"85107", 200, 85107.0}, {"85112", 200, 85112.0}, {"85113", 200, 85113.0},
		{"48001", 200, 48001.0}, {"502", 502, nil}, {"gateway_error", 200, nil},
	} {
		if st, b := admin(http.MethodPut, `{"answer":"`+tt.answer+`"}`); st != 200 || !strings.Contains(b, tt.answer) {
			t.Fatalf("PUT answer %s: HTTP %d %s", tt.answer, st, b)
		}
		status, _, a := post("")
		if status != tt.status || a["errcode"] != tt.errcode {
			t.Fatalf("answer %s: HTTP %d %v, want HTTP %d errcode %v", tt.answer, status, a, tt.status, tt.errcode)
		}
		if tt.answer == "gateway_error" && a["error_type"] != "GatewayError" {
			t.Fatalf("gateway_error answered %v, want error_type GatewayError", a)
		}
	}
	if c := sb.Calls("W1"); len(c) != 1 {
		t.Fatalf("%d calls recorded, want only the one that reached updatePath", len(c))
	}
	st := sb.Stats()
	if st.UpdateCalls != 9 || st.ByHTTPStatus[502] != 1 || st.ByErrcode[85107] != 1 || st.StableTokenCalls+st.ClassicTokenCalls != 0 {
		t.Fatalf("stats %+v: want 9 calls counted, one 502, one 85107, no token call", st)
	}
	for _, bad := range []string{`{"answer":"85108"}`, `{"answr":"85107"}`} {
		if st, b := admin(http.MethodPut, bad); st != http.StatusBadRequest {
			t.Fatalf("PUT %s: HTTP %d %s, want 400", bad, st, b)
		}
	}
	if st, b := admin(http.MethodGet, ""); st != 200 || !strings.Contains(b, `"gateway_error"`) {
		t.Fatalf("GET: HTTP %d %s, want the answer set last", st, b)
	}
	if err := sb.SetOpenInterfaceAnswer("nonsense"); err == nil {
		t.Fatal("SetOpenInterfaceAnswer took an unknown answer")
	}
}
