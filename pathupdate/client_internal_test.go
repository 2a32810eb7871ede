package pathupdate

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
)

// TestOKAnswerFastPath: post reads WeChat's success answer without
// encoding/json; what it makes of it must be what the decoding makes of
// it, with any token (one that appears in the errmsg is scrubbed either
// way).
func TestOKAnswerFastPath(t *testing.T) {
	t.Parallel()
	for _, tok := range []Secret{"", "ACCESS_TOKEN_0123456789", "ok", "k"} {
		for _, raw := range []string{okAnswer, okAnswer + "\n", okAnswer + " \r\n"} {
			if got, want := okOutcome(tok), answerOutcome([]byte(raw), tok); !reflect.DeepEqual(got, want) {
				t.Errorf("token %q, answer %q: fast path %+v, decoded %+v", tok.Reveal(), raw, got, want)
			}
		}
	}
}

// TestReadAnswer: the body up to maxAnswerSize, whether its length is
// announced or not, and the connection is reused after each (the body's
// end was read).
func TestReadAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		_, _ = w.Write(bytes.Repeat([]byte("a"), n))
	}))
	defer srv.Close()
	var conns atomic.Int32
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			conns.Add(1)
		}
	}}
	for _, n := range []int{0, 27, 511, 512, 513, 4000, maxAnswerSize - 1, maxAnswerSize, maxAnswerSize + 1, 2 * maxAnswerSize} {
		for _, chunked := range []string{"", "1"} {
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet,
				fmt.Sprintf("%s/?n=%d&chunked=%s", srv.URL, n, chunked), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, status, err := readAnswer(resp)
			if err != nil || status != http.StatusOK || len(b) != min(n, maxAnswerSize) {
				t.Fatalf("%d bytes (chunked %q): got %d bytes, HTTP %d, %v", n, chunked, len(b), status, err)
			}
		}
	}
	// Only the last answer, twice maxAnswerSize, is too long to drain.
	if got := conns.Load(); got > 2 {
		t.Errorf("%d connections, want the first and the one after the answer too long to drain", got)
	}
}
