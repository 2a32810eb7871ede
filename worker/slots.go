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
// A lane far busier than the waiting ones keeps its slot from one
// delivery to its next (releaseOrKeep): giving it back and waiting for the next
// release cost the hot waybill of the Zipf benchmark 1.4 ms on top of its
// 1.4 ms ack between two 22 ms calls, and its waybill's trace is what the
// whole job waits for at its end. A kept slot idles while the lane's ack
// is confirmed, so a lane with about as much work as the others gives it
// back: keeping for every lane with a little more backlog than the
// waiters kept 28 % of the slots of the 1,024-call benchmark idle through
// an ack, and cost it 5 % of its rate.
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
	kept    bool // the last grant was a keep
	// waitWork is the events the waiting lanes hold: the sum of their
	// backlogs plus one each (keep compares a lane with their mean).
	waitWork int
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

// keepFactor is how many times the events of the mean waiting lane a lane
// must hold to keep its slot (callSlots.releaseOrKeep). Measured with keep but
// without this test: in the Zipf benchmark the lanes that kept a slot
// held 6, 17 and 208 events (10th, 50th, 99th percentile) against a mean
// waiting lane's 1.2 to 1.8; in the 1,024-call one 2, 3 and 4 against
// about 1. The hot waybill's lane passes it; no uniform lane does.
const keepFactor = 8

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
	s.waitWork += backlog + 1
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
		s.waitWork -= w.backlog + 1
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
	s.releaseLocked()
}

// releaseLocked is release with s.mu held; it unlocks it.
func (s *callSlots) releaseLocked() {
	w := s.nextLocked()
	if w == nil {
		s.free++
	}
	s.mu.Unlock()
	if w != nil {
		close(w.granted)
	}
}

// releaseOrKeep ends a lane's delivered call: the lane keeps its slot for
// its next event, which has backlog events behind it (true), only if that
// event would be granted a slot before every waiter, and its lane holds
// keepFactor times the events of the mean waiting lane; else the slot is
// released (false). One lock for both, as every delivery with a next
// event asks. A keep counts as a grant by backlog, so the next release
// goes to an aged waiter; and while one is due, no keep follows a keep,
// so keeps cannot hold the slots from aged waiters for ever (with one
// slot they get every third grant). An aged waiter does not refuse a keep
// by itself: in a large backlog most waiters are aged, and the hot lane
// would give its slot back every other time.
func (s *callSlots) releaseOrKeep(backlog int) (kept bool) {
	s.mu.Lock()
	if len(s.byWork) > 0 && backlog > s.byWork[0].backlog &&
		(backlog+1)*len(s.byWork) >= keepFactor*s.waitWork &&
		(!s.kept || s.dueByAgeLocked() == nil) {
		s.byAge, s.kept = false, true
		s.mu.Unlock()
		return true
	}
	s.releaseLocked()
	return false
}

// nextLocked takes the waiter due first out of both queues: the oldest
// if it has waited maxWait and the last grant did not go by age, else the
// one with the most backlog.
func (s *callSlots) nextLocked() *slotWaiter {
	if len(s.byWork) == 0 {
		s.arrived = s.arrived[:0]
		return nil
	}
	var w *slotWaiter
	if oldest := s.dueByAgeLocked(); oldest != nil {
		w = heap.Remove(&s.byWork, oldest.index).(*slotWaiter)
		s.byAge = true
	} else {
		w = heap.Pop(&s.byWork).(*slotWaiter)
		s.byAge = false
	}
	w.index = -1
	s.waitWork -= w.backlog + 1
	s.kept = false
	return w
}

// dueByAgeLocked returns the oldest waiter if the next grant goes to it
// for its age: it has waited maxWait and the last grant did not go by
// age. It drops granted waiters from the front of arrived on the way.
func (s *callSlots) dueByAgeLocked() *slotWaiter {
	for len(s.arrived) > 0 && s.arrived[0].index < 0 {
		s.arrived[0] = nil
		s.arrived = s.arrived[1:]
	}
	if len(s.arrived) == 0 || s.byAge || s.now().Sub(s.arrived[0].since) < s.maxWait {
		return nil
	}
	return s.arrived[0]
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
