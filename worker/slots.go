package worker

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// callSlots bounds the API calls in progress (Config.Concurrency) and,
// when every slot is taken, gives the next free one to the waiting lane
// with the most events behind its head. A waybill's events go one at a
// time, so each moment a busy lane waits for a slot lengthens the whole
// job by as much, while a lane with one event loses nothing by waiting a
// turn behind it (first come, first served made Zipf-skewed traffic take
// half again as long as it must). Equal backlogs go in arrival order. A
// waiter that has waited maxWait goes first whatever its backlog, so no
// waybill starves behind busier ones — but at most every other grant: in
// a large backlog every waiter ends up waiting that long, and if age then
// decided alone, a busy lane would wait behind thousands of single-event
// lanes again, first come, first served. Alternating keeps the busiest
// lane's wait at one or two releases while the aged waiters are still
// served at half the release rate or more.
//
// Safe for concurrent use.
type callSlots struct {
	now     func() time.Time
	maxWait time.Duration

	mu      sync.Mutex
	free    int
	byWork  slotHeap      // waiters, most backlog first
	arrived []*slotWaiter // waiters in arrival order; granted ones are skipped lazily
	seq     uint64
	byAge   bool // the last grant went to an aged waiter for its age
}

// slotWaiter is one lane waiting for a slot.
type slotWaiter struct {
	backlog int
	seq     uint64
	since   time.Time
	granted chan struct{}
	index   int // in byWork; -1 once granted or gone
}

// slotMaxWait is how long a lane with little work waits behind busier
// ones at most.
const slotMaxWait = time.Second

func newCallSlots(n int, now func() time.Time, maxWait time.Duration) *callSlots {
	return &callSlots{free: n, now: now, maxWait: maxWait}
}

// acquire takes a slot for a lane with backlog events waiting behind the
// one it calls for, waiting until one is free or ctx ends.
func (s *callSlots) acquire(ctx context.Context, backlog int) error {
	s.mu.Lock()
	if s.free > 0 && len(s.byWork) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	s.seq++
	w := &slotWaiter{backlog: backlog, seq: s.seq, since: s.now(), granted: make(chan struct{})}
	heap.Push(&s.byWork, w)
	s.arrived = append(s.arrived, w)
	s.mu.Unlock()

	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.index >= 0 {
		heap.Remove(&s.byWork, w.index)
		w.index = -1
		s.mu.Unlock()
		return ctx.Err()
	}
	s.mu.Unlock()
	// Granted as ctx ended: hand the slot on.
	s.release()
	return ctx.Err()
}

// release frees a slot: to the waiter due first, or back to the pool.
func (s *callSlots) release() {
	s.mu.Lock()
	w := s.nextLocked()
	if w == nil {
		s.free++
	}
	s.mu.Unlock()
	if w != nil {
		close(w.granted)
	}
}

// nextLocked takes the waiter due first out of both queues: the oldest
// if it has waited maxWait and the last grant did not go by age, else the
// one with the most backlog.
func (s *callSlots) nextLocked() *slotWaiter {
	for len(s.arrived) > 0 && s.arrived[0].index < 0 {
		s.arrived[0] = nil
		s.arrived = s.arrived[1:]
	}
	if len(s.byWork) == 0 {
		s.arrived = s.arrived[:0]
		return nil
	}
	var w *slotWaiter
	if oldest := s.arrived[0]; !s.byAge && s.now().Sub(oldest.since) >= s.maxWait {
		w = heap.Remove(&s.byWork, oldest.index).(*slotWaiter)
		s.byAge = true
	} else {
		w = heap.Pop(&s.byWork).(*slotWaiter)
		s.byAge = false
	}
	w.index = -1
	return w
}

// slotHeap orders waiters by backlog, most first, then by arrival.
type slotHeap []*slotWaiter

func (h slotHeap) Len() int { return len(h) }
func (h slotHeap) Less(i, j int) bool {
	if h[i].backlog != h[j].backlog {
		return h[i].backlog > h[j].backlog
	}
	return h[i].seq < h[j].seq
}
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *slotHeap) Push(x any) {
	w := x.(*slotWaiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *slotHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return w
}
