package sandbox_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/pathupdate/pathupdate/sandbox"
)

// FuzzLoadOrders feeds arbitrary bytes to the orders-file decoder
// (`sandbox --orders-file`, POST /sandbox/orders). It must never panic;
// what it accepts has a waybill and a token for every order, and reads
// back the same whether written as JSON lines or as one array.
// Seeds: testdata/fuzz/FuzzLoadOrders.
func FuzzLoadOrders(f *testing.F) {
	for _, s := range []string{
		`{"waybill_id":"W1","token":"t1"}` + "\n\n" + `{"waybill_id":"W2","token":"t2"}`,
		`[{"waybill_id":"W1","token":"t1"},{"waybill_id":"W1","token":"t1"}]`,
		`[{"waybill_id":"W1","token":"t1"}] x`, `[`, ` `, `{"waybill_id":"W1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orders, err := sandbox.LoadOrders(bytes.NewReader(data))
		if err != nil {
			return
		}
		var lines bytes.Buffer
		array := []sandbox.Order{}
		for w, tok := range orders {
			if w == "" || tok == "" {
				t.Fatalf("accepted an order with an empty waybill or token: %q -> %q", w, tok)
			}
			o := sandbox.Order{WaybillID: w, Token: tok}
			b, _ := json.Marshal(o)
			lines.Write(append(b, '\n'))
			array = append(array, o)
		}
		b, _ := json.Marshal(array)
		for _, enc := range [][]byte{lines.Bytes(), b} {
			back, err := sandbox.LoadOrders(bytes.NewReader(enc))
			if err != nil || !maps.Equal(back, orders) {
				t.Fatalf("%q -> %v, written as %q reads back %v, %v", data, orders, enc, back, err)
			}
		}
	})
}

// FuzzFaultsJSON feeds arbitrary bodies to PUT /sandbox/faults through the
// sandbox's handler. It must never panic or answer 5xx; a body it takes
// sets faults that are in range and that GET /sandbox/faults gives back
// in a form PUT takes again unchanged. Seeds: testdata/fuzz/FuzzFaultsJSON.
func FuzzFaultsJSON(f *testing.F) {
	for _, s := range []string{
		`{"system_error_rate":0.3,"latency":"20ms","minute_quota":5}`,
		`{"http_5xx_rate":1,"outage_seconds":60}`, `{"latency":1000000}`, `{"latency":"-1s"}`,
		`{"system_error_rate":"NaN"}`, `{"outage_until":"2026-01-02T15:04:05Z"}`, `{"bogus":1}`, `null`,
	} {
		f.Add([]byte(s))
	}
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := sb.Faults()
		code, _ := callAdmin(sb, "PUT", "/sandbox/faults", body)
		switch {
		case code >= 500:
			t.Fatalf("PUT %q: HTTP %d", body, code)
		case code != 200:
			if after := sb.Faults(); !sameFaults(after, before) {
				t.Fatalf("refused PUT %q changed the faults: %+v -> %+v", body, before, after)
			}
			return
		}
		set := sb.Faults()
		if err := set.Validate(); err != nil {
			t.Fatalf("PUT %q set faults out of range: %+v: %v", body, set, err)
		}
		_, got := callAdmin(sb, "GET", "/sandbox/faults", nil)
		if code, _ := callAdmin(sb, "PUT", "/sandbox/faults", got); code != 200 {
			t.Fatalf("GET gave %q, which PUT refuses (%d)", got, code)
		}
		if again := sb.Faults(); !sameFaults(again, set) {
			t.Fatalf("GET/PUT round trip changed the faults: %+v -> %+v", set, again)
		}
	})
}

// callAdmin calls an admin endpoint of sb in-process.
func callAdmin(sb *sandbox.Sandbox, method, path string, body []byte) (int, []byte) {
	rec := httptest.NewRecorder()
	sb.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	return rec.Code, rec.Body.Bytes()
}

// sameFaults compares faults, the outage's end by instant (a time read
// back from JSON has no monotonic clock reading).
func sameFaults(a, b sandbox.Faults) bool {
	if !a.OutageUntil.Equal(b.OutageUntil) {
		return false
	}
	if !slices.Equal(a.SystemErrorWaybills, b.SystemErrorWaybills) { // nil and empty alike
		return false
	}
	a.OutageUntil, a.SystemErrorWaybills = b.OutageUntil, b.SystemErrorWaybills
	return reflect.DeepEqual(a, b)
}
