package sandbox_test

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

func TestFaultRates(t *testing.T) {
	t.Parallel()
	const calls = 2000
	for _, tc := range []struct {
		name   string
		faults sandbox.Faults
		hit    func(answer) bool
	}{
		{"system error", sandbox.Faults{SystemErrorRate: 0.3}, func(a answer) bool { return a.Status == 200 && a.ErrCode == -1 }},
		{"http 5xx", sandbox.Faults{HTTP5xxRate: 0.3}, func(a answer) bool { return a.Status >= 500 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, sandbox.Config{AcceptAnyWaybill: true, Seed: 42, Faults: tc.faults})
			at := token(t, srv)
			hits := 0
			statuses := map[int]int{}
			for i := range calls {
				a := update(t, srv, at, event("W", "T", i))
				statuses[a.Status]++
				switch {
				case tc.hit(a):
					hits++
				case a.Status != 200 || a.ErrCode != 0:
					t.Fatalf("call %d: HTTP %d errcode %d, want the fault or success", i, a.Status, a.ErrCode)
				}
			}
			if hits < calls*2/10 || hits > calls*4/10 {
				t.Fatalf("%d of %d calls hit, want about 30%%", hits, calls)
			}
			if tc.faults.HTTP5xxRate > 0 {
				for _, s := range []int{500, 502, 503, 504} {
					if statuses[s] == 0 {
						t.Fatalf("statuses %v: no %d", statuses, s)
					}
				}
			}
			st := srv.Stats()
			if st.Delivered != int64(calls-hits) || int(st.UpdateCalls) != calls || len(srv.Delivered("W")) != calls-hits {
				t.Fatalf("stats %+v, want %d delivered of %d", st, calls-hits, calls)
			}
		})
	}
}

// TestSeedRepeats: the same seed gives the same faults in the same order.
func TestSeedRepeats(t *testing.T) {
	t.Parallel()
	run := func() string {
		srv := start(t, sandbox.Config{AcceptAnyWaybill: true, Seed: 7,
			Faults: sandbox.Faults{SystemErrorRate: 0.3, HTTP5xxRate: 0.2}})
		at := token(t, srv)
		var b strings.Builder
		for i := range 200 {
			a := update(t, srv, at, event("W", "T", i))
			b.WriteString(http.StatusText(a.Status))
			b.WriteByte(byte('0' + a.ErrCode + 1))
		}
		return b.String()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("two runs with seed 7 differ:\n%s\n%s", a, b)
	}
}

// TestFaultOrder: outage, 5xx, latency, quota, system error, then the body.
func TestFaultOrder(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := start(t, sandbox.Config{Now: clk.Now})
	at := token(t, srv)
	for _, tc := range []struct {
		name       string
		faults     sandbox.Faults
		body       string
		wantStatus int
		wantCode   int
	}{
		{"outage before 5xx", sandbox.Faults{OutageUntil: clk.Now().Add(time.Second), HTTP5xxRate: 1, SystemErrorRate: 1}, "", 503, 0},
		{"5xx before system error", sandbox.Faults{HTTP5xxRate: 1, SystemErrorRate: 1}, "", 0, 0},
		{"quota before system error", sandbox.Faults{MinuteQuota: 1, SystemErrorRate: 1}, "", 200, 45011},
		{"system error before body", sandbox.Faults{SystemErrorRate: 1}, "", 200, -1},
		{"body before order", sandbox.Faults{}, "", 200, 44002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetFaults(tc.faults)
			if tc.faults.MinuteQuota > 0 { // use up the minute's quota
				update(t, srv, at, tc.body)
			}
			a := update(t, srv, at, tc.body)
			if tc.wantStatus == 0 {
				if a.Status < 500 {
					t.Fatalf("got HTTP %d, want 5xx", a.Status)
				}
				return
			}
			if a.Status != tc.wantStatus || a.ErrCode != tc.wantCode {
				t.Fatalf("got HTTP %d errcode %d, want HTTP %d errcode %d", a.Status, a.ErrCode, tc.wantStatus, tc.wantCode)
			}
		})
	}
	// A bad access_token is refused before any fault.
	srv.SetFaults(sandbox.Faults{OutageUntil: clk.Now().Add(time.Hour)})
	if a := update(t, srv, "nope", ""); a.Status != 200 || a.ErrCode != 40001 {
		t.Fatalf("bad token in an outage: HTTP %d errcode %d, want 40001", a.Status, a.ErrCode)
	}
}

func TestOutageWindow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true})
	at := token(t, srv)
	srv.SetFaults(sandbox.Faults{OutageUntil: clk.Now().Add(time.Minute)})
	a := update(t, srv, at, event("W", "T", 1))
	if a.Status != http.StatusServiceUnavailable || strings.HasPrefix(a.Body, "{") {
		t.Fatalf("in the outage: HTTP %d %q, want 503 with a plain-text body", a.Status, a.Body)
	}
	clk.Advance(time.Minute - time.Nanosecond)
	if a := update(t, srv, at, event("W", "T", 2)); a.Status != http.StatusServiceUnavailable {
		t.Fatalf("just before the end: HTTP %d, want 503", a.Status)
	}
	clk.Advance(time.Nanosecond)
	if a := update(t, srv, at, event("W", "T", 3)); a.Status != 200 || a.ErrCode != 0 {
		t.Fatalf("after the outage: HTTP %d errcode %d, want success", a.Status, a.ErrCode)
	}
	calls := srv.Calls("W")
	if len(calls) != 3 || calls[0].HTTPStatus != 503 || calls[1].HTTPStatus != 503 || !calls[2].Delivered() {
		t.Fatalf("record %+v, want 503, 503, delivered", calls)
	}
	if st := srv.Stats(); st.ByHTTPStatus[503] != 2 || st.ByHTTPStatus[200] != 1 {
		t.Fatalf("stats by status %v", st.ByHTTPStatus)
	}
}

func TestMinuteQuota(t *testing.T) {
	t.Parallel()
	clk := newClock() // 30 s into a minute
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true,
		Faults: sandbox.Faults{MinuteQuota: 3}})
	at := token(t, srv)
	want := []int{0, 0, 0, 45011, 45011}
	for i, w := range want {
		if a := update(t, srv, at, event("W", "T", i)); a.ErrCode != w {
			t.Fatalf("call %d in the first minute: errcode %d, want %d", i, a.ErrCode, w)
		}
	}
	clk.Advance(29 * time.Second) // still the same minute
	if a := update(t, srv, at, event("W", "T", 9)); a.ErrCode != 45011 {
		t.Fatalf("end of the minute: errcode %d, want 45011", a.ErrCode)
	}
	clk.Advance(time.Second) // the next wall-clock minute
	for i, w := range want {
		if a := update(t, srv, at, event("W", "T", 10+i)); a.ErrCode != w {
			t.Fatalf("call %d in the next minute: errcode %d, want %d", i, a.ErrCode, w)
		}
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true,
		Faults: sandbox.Faults{Latency: sandbox.Duration(100 * time.Millisecond)}})
	at := token(t, srv)
	t0 := time.Now()
	if a := update(t, srv, at, event("W", "T", 1)); a.ErrCode != 0 {
		t.Fatalf("errcode %d", a.ErrCode)
	}
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Fatalf("answered after %v, want at least the 100ms latency", d)
	}
}

func TestSetFaultsClamps(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{})
	srv.SetFaults(sandbox.Faults{SystemErrorRate: 2, HTTP5xxRate: math.NaN(), Latency: -1, MinuteQuota: -5})
	if got, want := srv.Faults(), (sandbox.Faults{SystemErrorRate: 1}); !reflect.DeepEqual(got, want) {
		t.Fatalf("faults %+v, want %+v", got, want)
	}
}

func TestFaultsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f    sandbox.Faults
		want string // "" for valid
	}{
		{sandbox.Faults{}, ""},
		{sandbox.Faults{SystemErrorRate: 1, HTTP5xxRate: 1, Latency: 1, MinuteQuota: 1}, ""},
		{sandbox.Faults{SystemErrorRate: -0.1}, "system_error_rate"},
		{sandbox.Faults{SystemErrorRate: math.NaN()}, "system_error_rate"},
		{sandbox.Faults{HTTP5xxRate: 1.5}, "http_5xx_rate"},
		{sandbox.Faults{Latency: -1}, "latency"},
		{sandbox.Faults{MinuteQuota: -1}, "minute_quota"},
	} {
		err := tc.f.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want an error naming %q", tc.f, err, tc.want)
		}
	}
}

func TestFaultsJSON(t *testing.T) {
	t.Parallel()
	f := sandbox.Faults{SystemErrorRate: 0.1, Latency: sandbox.Duration(20 * time.Millisecond), MinuteQuota: 5}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"latency":"20ms"`) || strings.Contains(s, "outage_until") {
		t.Fatalf("JSON %s: want latency as \"20ms\" and no zero outage_until", s)
	}
	var back sandbox.Faults
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, f) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for in, want := range map[string]time.Duration{`"1.5s"`: 1500 * time.Millisecond, `1000`: time.Microsecond, `null`: 0} {
		var d sandbox.Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{`"soon"`, `1.5`, `true`} {
		var d sandbox.Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}
