package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// gatedAPI answers once open is closed, and counts the calls it saw.
type gatedAPI struct {
	open    chan struct{}
	mu      sync.Mutex
	calls   int
	arrived chan struct{}
}

func (a *gatedAPI) UpdatePath(context.Context, pathupdate.Event) pathupdate.Outcome {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	a.arrived <- struct{}{}
	<-a.open
	return pathupdate.Outcome{Kind: pathupdate.Delivered}
}

// TestCallersKeptBetweenCalls: calls made at once each get a caller;
// calls made after those are done go to the callers already there, and
// close ends them all.
func TestCallersKeptBetweenCalls(t *testing.T) {
	t.Parallel()
	const atOnce = 5
	api := &gatedAPI{open: make(chan struct{}), arrived: make(chan struct{}, 100)}
	c := newCallers(api)
	var wg sync.WaitGroup
	for range atOnce {
		wg.Go(func() {
			if o := c.call(context.Background(), pathupdate.Event{}); o.Kind != pathupdate.Delivered {
				t.Errorf("outcome %v", o)
			}
		})
	}
	for range atOnce {
		select {
		case <-api.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the calls made at once did not all reach the API")
		}
	}
	close(api.open)
	wg.Wait()
	if n := c.started.Load(); n != atOnce {
		t.Fatalf("%d callers for %d calls at once, want one each", n, atOnce)
	}
	// The first call after them may find every caller still on its way
	// back to waiting; the ones after it find them waiting.
	var kept int64
	for i := range 3 * atOnce {
		if o := c.call(context.Background(), pathupdate.Event{}); o.Kind != pathupdate.Delivered {
			t.Fatalf("call %d: %v", i, o)
		}
		<-api.arrived
		if i == 0 {
			kept = c.started.Load()
		}
	}
	if n := c.started.Load(); n != kept {
		t.Fatalf("%d callers started by %d calls one at a time, after %d: want the ones there kept", n-kept, 3*atOnce-1, kept)
	}
	c.close()
}
