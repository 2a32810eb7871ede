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
			// The slots read their clock only under their lock; the test
			// moves it under the same lock.
			now := time.Unix(1700000000, 0)
			s := newCallSlots(1, func() time.Time { return now }, slotMaxWait)
			if err := s.acquire(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			got := make(chan int, len(tc.backlog))
			for i, b := range tc.backlog {
				go func() {
					if err := s.acquire(context.Background(), b); err != nil {
						t.Error(err)
					}
					got <- i
				}()
				waiting(t, s, i+1)
			}
			s.mu.Lock()
			now = now.Add(tc.aged)
			s.mu.Unlock()
			var order []int
			for range tc.backlog {
				s.release()
				select {
				case i := <-got:
					order = append(order, i)
				case <-time.After(5 * time.Second):
					t.Fatalf("no waiter got the freed slot; so far %v", order)
				}
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
