package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

// admin makes an admin request and decodes a 200 answer into out (if not
// nil); it returns the status and the raw body.
func admin(t *testing.T, srv *sandbox.Server, method, path, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

func TestAdminOrders(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{Orders: map[string]string{"C": "tc"}})
	var reg map[string]int
	if st, body := admin(t, srv, "POST", "/sandbox/orders", `[{"waybill_id":"B","token":"tb"},{"waybill_id":"A","token":"ta"}]`, &reg); st != 200 || reg["registered"] != 2 {
		t.Fatalf("POST array: %d %s", st, body)
	}
	if st, body := admin(t, srv, "POST", "/sandbox/orders", "{\"waybill_id\":\"D\",\"token\":\"td\"}\n\n{\"waybill_id\":\"A\",\"token\":\"ta2\"}\n", &reg); st != 200 || reg["registered"] != 2 {
		t.Fatalf("POST lines: %d %s", st, body)
	}
	var list []sandbox.Order
	admin(t, srv, "GET", "/sandbox/orders", "", &list)
	want := []sandbox.Order{{"A", "ta2"}, {"B", "tb"}, {"C", "tc"}, {"D", "td"}}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Fatalf("orders %v, want %v", list, want)
	}
	st, body := admin(t, srv, "POST", "/sandbox/orders", "{\"waybill_id\":\"E\",\"token\":\"te\"}\n{\"waybill_id\":\"F\"}\n", nil)
	if st != http.StatusBadRequest || !strings.Contains(body, "line 2") {
		t.Fatalf("POST bad line 2: %d %s, want 400 naming line 2", st, body)
	}
	if got := srv.Orders(); len(got) != 4 {
		t.Fatalf("a refused POST registered orders: %v", got)
	}
	// The registered orders are what path/update checks against.
	at := token(t, srv)
	if a := update(t, srv, at, event("D", "td", 1)); a.ErrCode != 0 {
		t.Fatalf("order registered over HTTP: errcode %d", a.ErrCode)
	}
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true})
	var f sandbox.Faults
	st, body := admin(t, srv, "PUT", "/sandbox/faults", `{"system_error_rate":0.5,"latency":"20ms","minute_quota":100}`, &f)
	want := sandbox.Faults{SystemErrorRate: 0.5, Latency: sandbox.Duration(20 * time.Millisecond), MinuteQuota: 100}
	if st != 200 || !reflect.DeepEqual(f, want) {
		t.Fatalf("PUT: %d %s", st, body)
	}
	f = sandbox.Faults{}
	admin(t, srv, "GET", "/sandbox/faults", "", &f)
	if !reflect.DeepEqual(f, want) || !reflect.DeepEqual(srv.Faults(), want) {
		t.Fatalf("GET %+v, Faults() %+v, want %+v", f, srv.Faults(), want)
	}
	// PUT replaces all; outage_seconds counts from the sandbox's clock.
	admin(t, srv, "PUT", "/sandbox/faults", `{"outage_seconds":90}`, &f)
	if want := (sandbox.Faults{OutageUntil: clk.Now().Add(90 * time.Second)}); !f.OutageUntil.Equal(want.OutageUntil) || f.SystemErrorRate != 0 {
		t.Fatalf("after outage_seconds: %+v, want %+v", f, want)
	}
	at := token(t, srv)
	if a := update(t, srv, at, event("W", "T", 1)); a.Status != 503 {
		t.Fatalf("in the outage set over HTTP: HTTP %d", a.Status)
	}
	for _, bad := range []string{`{"system_error_rate":2}`, `{"sytem_error_rate":0.1}`, `{"latency":"soon"}`, `{"outage_seconds":-1}`, `not json`} {
		if st, body := admin(t, srv, "PUT", "/sandbox/faults", bad, nil); st != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("PUT %s: %d %s, want 400 with an error", bad, st, body)
		}
	}
	if !srv.Faults().OutageUntil.Equal(f.OutageUntil) {
		t.Fatal("a refused PUT changed the faults")
	}
}

func TestAdminRevokeReceivedStatsReset(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{Orders: map[string]string{"A": "ta", "B": "tb"}})
	at := token(t, srv)
	update(t, srv, at, event("A", "ta", 1))
	update(t, srv, at, event("A", "bad", 2))
	update(t, srv, at, event("B", "tb", 3))

	var rec sandbox.Received
	admin(t, srv, "GET", "/sandbox/received", "", &rec)
	if len(rec.Waybills) != 2 || len(rec.Waybills["A"]) != 2 || len(rec.Waybills["B"]) != 1 ||
		rec.Waybills["A"][1].ErrCode != 9300507 || rec.Waybills["A"][1].Token != "bad" {
		t.Fatalf("received %+v", rec)
	}
	rec = sandbox.Received{}
	admin(t, srv, "GET", "/sandbox/received?waybill=A&delivered=1", "", &rec)
	if len(rec.Waybills) != 1 || len(rec.Waybills["A"]) != 1 || rec.Waybills["A"][0].ActionTime != 1700000001 {
		t.Fatalf("received A delivered %+v", rec)
	}
	if st, _ := admin(t, srv, "GET", "/sandbox/received?delivered=maybe", "", nil); st != http.StatusBadRequest {
		t.Fatalf("delivered=maybe: %d, want 400", st)
	}
	// The JSON carries snake_case fields.
	_, raw := admin(t, srv, "GET", "/sandbox/received?waybill=B", "", nil)
	for _, k := range []string{`"seq":`, `"at":`, `"waybill_id":"B"`, `"action_time":`, `"action_type":200001`, `"action_msg":`, `"errcode":0`, `"http_status":200`} {
		if !strings.Contains(raw, k) {
			t.Errorf("received JSON %s lacks %s", raw, k)
		}
	}

	var st sandbox.Stats
	admin(t, srv, "GET", "/sandbox/stats", "", &st)
	if fmt.Sprint(st) != fmt.Sprint(srv.Stats()) || st.Delivered != 2 || st.ByErrcode[9300507] != 1 {
		t.Fatalf("stats over HTTP %+v, Stats() %+v", st, srv.Stats())
	}

	if code, body := admin(t, srv, "POST", "/sandbox/revoke-tokens", "", nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if a := update(t, srv, at, event("A", "ta", 4)); a.ErrCode != 40001 {
		t.Fatalf("after revoke over HTTP: errcode %d, want 40001", a.ErrCode)
	}
	if code, body := admin(t, srv, "POST", "/sandbox/reset", "", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	rec = sandbox.Received{}
	admin(t, srv, "GET", "/sandbox/received", "", &rec)
	if len(rec.Waybills) != 0 {
		t.Fatalf("received after reset %+v", rec)
	}
	if code, _ := admin(t, srv, "DELETE", "/sandbox/orders", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE /sandbox/orders: %d, want 405", code)
	}
}
