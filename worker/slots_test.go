package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waiting waits until n lanes wait for a slot of s.
func waiting(t *testing.T, s *callSlots, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.byWork)
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCallSlotsOrder takes the only slot, queues waiters one after
// another, then frees the slot once per waiter and records who got it.
func TestCallSlotsOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		backlog []int         // of each waiter, in arrival order
		aged    time.Duration // how far the clock moves before the releases
		want    []int         // waiters in the order they get the slot
	}{
		{"busiest first", []int{1, 5, 3}, 0, []int{1, 2, 0}},
		{"equal backlogs in arrival order", []int{2, 2, 2}, 0, []int{0, 1, 2}},
		{"busiest first, ties by arrival", []int{0, 7, 3, 7}, 0, []int{1, 3, 2, 0}},
		{"an aged waiter goes first", []int{0, 9, 4}, slotMaxWait, []int{0, 1, 2}},
		{"not yet aged", []int{0, 9, 4}, slotMaxWait - time.Millisecond, []int{1, 2, 0}},
		// Everyone aged: age decides every other grant, backlog the rest,
		// so the busiest lane is not left behind every aged one.
		{"aged and busiest alternate", []int{0, 0, 9, 0, 5}, slotMaxWait, []int{0, 2, 1, 4, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, got := slotsWithWaiters(t, tc.backlog, tc.aged)
			var order []int
			for range tc.backlog {
				s.release()
				i, ok := recvWithin(got, 5*time.Second)
				if !ok {
					t.Fatalf("no waiter got the freed slot; so far %v", order)
				}
				order = append(order, i)
			}
			for i := range tc.want {
				if order[i] != tc.want[i] {
					t.Fatalf("slots went to %v, want %v", order, tc.want)
				}
			}
		})
	}
}

// TestCallSlotsCancelled: a waiter whose context ends leaves the queue,
// and the slot goes to the next one or back to the pool, never lost.
func TestCallSlotsCancelled(t *testing.T) {
	t.Parallel()
	s := newCallSlots(1, time.Now, slotMaxWait)
	if err := s.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- s.acquire(ctx, 9) }()
	waiting(t, s, 1)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
	}
	waiting(t, s, 0)
	s.release()
	// The slot is free again: taken at once, and only once.
	if err := s.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	free := s.free
	s.mu.Unlock()
	if free != 0 {
		t.Fatalf("%d slots free after taking the only one", free)
	}
}

// TestCallSlotsKeep: a lane that has just delivered keeps its slot only
// when its next event would be granted the next free slot anyway and its
// lane is far busier than the waiting ones.
func TestCallSlotsKeep(t *testing.T) {
	t.Parallel()
	crowd := func(top int) []int { // one busy waiter among 99 with one event
		return append([]int{top}, make([]int, 99)...)
	}
	for _, tc := range []struct {
		name    string
		waiters []int         // backlogs of the lanes waiting, in arrival order
		aged    time.Duration // how far the clock moves before releaseOrKeep
		backlog int           // of the keeping lane's next event
		want    bool
	}{
		{"nobody waits: the slot goes back to the pool", nil, 0, 20, false},
		{"far busier than every waiter", []int{0, 1}, 0, 20, true},
		{"busier than every waiter, not far", []int{0, 1}, 0, 5, false},
		{"a tie goes to the waiter that came first", crowd(50), 0, 50, false},
		{"ahead of the busiest waiter", crowd(50), 0, 51, true},
		{"an aged waiter does not refuse a first keep", []int{0}, slotMaxWait, 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, got := slotsWithWaiters(t, tc.waiters, tc.aged)
			kept := s.releaseOrKeep(tc.backlog)
			if kept != tc.want {
				t.Fatalf("releaseOrKeep(%d) = %v, want %v", tc.backlog, kept, tc.want)
			}
			// Whether kept or not, the slot goes round: every waiter
			// gets it once, none twice. Not kept, it went to the first
			// already.
			for i := range tc.waiters {
				if i > 0 || kept {
					s.release()
				}
				if _, ok := recvWithin(got, 5*time.Second); !ok {
					t.Fatal("a waiter never got the slot")
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.waitWork != 0 {
				t.Fatalf("waitWork %d with nobody waiting", s.waitWork)
			}
		})
	}
}

// TestCallSlotsKeepDoesNotStarve: with one slot and a busy lane that
// would keep it for ever, aged waiters still get turns: no keep follows a
// keep while one is due, and the release after a keep goes by age.
func TestCallSlotsKeepDoesNotStarve(t *testing.T) {
	t.Parallel()
	s, got := slotsWithWaiters(t, []int{0, 0}, slotMaxWait)
	for want := range 2 {
		if !s.releaseOrKeep(20) {
			t.Fatalf("turn %d: not kept, though the last grant was no keep", want)
		}
		if s.releaseOrKeep(20) { // released, to an aged waiter
			t.Fatalf("turn %d: kept twice in a row while an aged waiter was due", want)
		}
		if i, ok := recvWithin(got, 5*time.Second); !ok || i != want {
			t.Fatalf("turn %d: released slot went to %d (%v), want waiter %d", want, i, ok, want)
		}
		// The waiter that got the slot plays the busy lane from here.
	}
}

// slotsWithWaiters makes slots with one slot, takes it, queues a waiter
// per backlog (queueWaiters), then moves the clock by aged.
func slotsWithWaiters(t *testing.T, backlogs []int, aged time.Duration) (*callSlots, <-chan int) {
	t.Helper()
	// The slots read their clock only under their lock; the test moves it
	// under the same lock.
	now := time.Unix(1700000000, 0)
	s := newCallSlots(1, func() time.Time { return now }, slotMaxWait)
	if err := s.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	got := queueWaiters(t, s, backlogs)
	s.mu.Lock()
	now = now.Add(aged)
	s.mu.Unlock()
	return s, got
}

// queueWaiters starts one acquire per backlog, in order, each waiting
// before the next starts; got receives each one's index once granted.
func queueWaiters(t *testing.T, s *callSlots, backlogs []int) <-chan int {
	t.Helper()
	got := make(chan int, len(backlogs))
	for i, b := range backlogs {
		go func() {
			if err := s.acquire(context.Background(), b); err != nil {
				t.Error(err)
			}
			got <- i
		}()
		waiting(t, s, i+1)
	}
	return got
}

func recvWithin(ch <-chan int, d time.Duration) (int, bool) {
	select {
	case i := <-ch:
		return i, true
	case <-time.After(d):
		return -1, false
	}
}
