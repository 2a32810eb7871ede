package sandbox_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/pathupdate/pathupdate/sandbox"
)

// TestRecordConcurrent: 200 goroutines, four to a waybill, each sending its
// calls one after another. Per waybill the record must hold every call, and
// each goroutine's calls in the order it sent them with the answers it got.
func TestRecordConcurrent(t *testing.T) {
	t.Parallel()
	const (
		goroutines = 200
		perWaybill = 4
		each       = 10
	)
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true, Seed: 1,
		Faults: sandbox.Faults{SystemErrorRate: 0.2}})
	at := token(t, srv)

	got := make([][]int, goroutines) // errcodes each goroutine was answered
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			w := fmt.Sprintf("W%03d", g/perWaybill)
			for n := range each {
				body := fmt.Sprintf(`{"token":"T","waybill_id":%q,"action_time":%d,"action_type":200001,"action_msg":"g%d-%d"}`,
					w, 1700000000+n, g, n)
				a, err := do(t.Context(), srv.Client(), http.MethodPost, updateURL(srv.URL, at), body)
				if err != nil {
					t.Errorf("goroutine %d call %d: %v", g, n, err)
					return
				}
				got[g] = append(got[g], a.ErrCode)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	waybills := srv.Waybills()
	if len(waybills) != goroutines/perWaybill || !slices.IsSorted(waybills) {
		t.Fatalf("waybills %v", waybills)
	}
	delivered := 0
	for _, w := range waybills {
		calls := srv.Calls(w)
		if len(calls) != perWaybill*each {
			t.Fatalf("%s: %d calls recorded, want %d", w, len(calls), perWaybill*each)
		}
		next := map[int]int{} // goroutine -> next n expected
		for i, c := range calls {
			if i > 0 && c.Seq <= calls[i-1].Seq {
				t.Fatalf("%s: seq %d after %d", w, c.Seq, calls[i-1].Seq)
			}
			var g, n int
			if _, err := fmt.Sscanf(c.ActionMsg, "g%d-%d", &g, &n); err != nil {
				t.Fatalf("%s: action_msg %q", w, c.ActionMsg)
			}
			if n != next[g] {
				t.Fatalf("%s: goroutine %d call %d recorded where call %d was due", w, g, n, next[g])
			}
			next[g]++
			if c.HTTPStatus != 200 || c.ErrCode != got[g][n] {
				t.Fatalf("%s: goroutine %d call %d recorded HTTP %d errcode %d, answered %d", w, g, n, c.HTTPStatus, c.ErrCode, got[g][n])
			}
			if c.Delivered() {
				delivered++
			}
		}
	}
	st := srv.Stats()
	if st.UpdateCalls != goroutines*each || st.Delivered != int64(delivered) ||
		st.ByErrcode[0]+st.ByErrcode[-1] != goroutines*each || st.ByErrcode[-1] == 0 {
		t.Fatalf("stats %+v, want %d calls, %d delivered, some -1", st, goroutines*each, delivered)
	}
}

func TestResetAndStats(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{Orders: map[string]string{"W": "T"}})
	at := token(t, srv)
	classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret)
	classic(t, srv, "bad", "")
	update(t, srv, at, event("W", "T", 1))
	update(t, srv, at, event("W", "wrong", 2))
	update(t, srv, "", event("W", "T", 3))

	want := sandbox.Stats{
		ClassicTokenCalls: 2, StableTokenCalls: 1, ClassicTokensIssued: 1, StableTokensIssued: 1,
		UpdateCalls: 3, Delivered: 1,
		ByErrcode:    map[int]int64{0: 1, 9300507: 1, 41001: 1},
		ByHTTPStatus: map[int]int64{200: 3},
	}
	if got := srv.Stats(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
	srv.Reset()
	if st := srv.Stats(); st.UpdateCalls != 0 || st.StableTokenCalls != 0 || len(st.ByErrcode) != 0 {
		t.Fatalf("stats after Reset %+v", st)
	}
	if len(srv.Waybills()) != 0 || len(srv.Calls("W")) != 0 {
		t.Fatal("calls survived Reset")
	}
	// Orders and tokens survive.
	if a := update(t, srv, at, event("W", "T", 4)); a.ErrCode != 0 {
		t.Fatalf("after Reset: errcode %d, want 0", a.ErrCode)
	}
	if c := srv.Calls("W"); len(c) != 1 || c[0].ActionTime != 1700000004 {
		t.Fatalf("calls after Reset %+v", c)
	}
}
