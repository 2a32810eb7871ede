package pathupdate_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestHTTPClientForKeepsAConnectionPerCall makes calls requests at once,
// twice: the server answers none of a round until all of it has arrived,
// so every call needs a connection of its own, and the second round must
// find them all kept. calls is above DefaultHTTPCalls, what the client
// kept before it was sized to the calls in flight.
func TestHTTPClientForKeepsAConnectionPerCall(t *testing.T) {
	t.Parallel()
	const calls = pathupdate.DefaultHTTPCalls + 44
	var conns atomic.Int32
	var mu sync.Mutex
	arrived, release := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		arrived++
		wait := release
		if arrived == calls {
			close(release)
			arrived, release = 0, make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-wait:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL, Tokens: pathupdate.NewStaticTokenSource("tok"),
		HTTPClient: pathupdate.NewHTTPClientFor(30*time.Second, calls)})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		var wg sync.WaitGroup
		outcomes := make(chan pathupdate.Outcome, calls)
		for range calls {
			wg.Go(func() { outcomes <- c.UpdatePath(context.Background(), event("W1", "t")) })
		}
		wg.Wait()
		close(outcomes)
		for o := range outcomes {
			if o.Kind != pathupdate.Delivered {
				t.Fatalf("round %d: %v", round, o)
			}
		}
	}
	if got := conns.Load(); got != calls {
		t.Fatalf("two rounds of %d calls at once opened %d connections, want %d (one per call, kept between rounds)", calls, got, calls)
	}
}
