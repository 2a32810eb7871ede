package console

import (
	"sync"
	"time"

	"github.com/pathupdate/pathupdate/worker"
)

// rateWindow is how far back the overview's per-minute chart reaches.
const rateWindow = time.Hour

// rates works out delivered and dead-lettered per minute for the whole
// deployment from the running totals each live worker publishes in its
// membership entry (worker.Member.Delivered, DeadLettered). A worker's
// totals restart at 0 with the process: a total lower than the last one
// seen is a restart, and all of it is new. What workers had done before
// the console's first look is not counted.
type rates struct {
	mu      sync.Mutex
	started bool
	last    map[string]worker.Member // by member id
	minutes []minuteCount            // oldest first, at most rateWindow
}

// minuteCount is one minute's deliveries and dead letters.
type minuteCount struct {
	Start        time.Time
	Delivered    uint64
	DeadLettered uint64
}

// sample takes in the members' totals seen at now.
func (r *rates) sample(members []worker.Member, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var delivered, dead uint64
	seen := make(map[string]worker.Member, len(members))
	for _, m := range members {
		seen[m.ID] = m
		prev, known := r.last[m.ID]
		if !r.started {
			continue // a baseline: what came before is not this console's to count
		}
		if !known || m.Delivered < prev.Delivered || m.DeadLettered < prev.DeadLettered {
			prev = worker.Member{} // a new worker, or a restart: all of it is new
		}
		delivered += m.Delivered - prev.Delivered
		dead += m.DeadLettered - prev.DeadLettered
	}
	r.last, r.started = seen, true
	minute := now.Truncate(time.Minute)
	if n := len(r.minutes); n == 0 || !r.minutes[n-1].Start.Equal(minute) {
		r.minutes = append(r.minutes, minuteCount{Start: minute})
	}
	cur := &r.minutes[len(r.minutes)-1]
	cur.Delivered += delivered
	cur.DeadLettered += dead
	cutoff := minute.Add(-rateWindow)
	for len(r.minutes) > 0 && !r.minutes[0].Start.After(cutoff) {
		r.minutes = r.minutes[1:]
	}
}

// series returns the last hour minute by minute, oldest first, missing
// minutes as zeros, ending with the minute of now.
func (r *rates) series(now time.Time) []minuteCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := now.Truncate(time.Minute)
	n := int(rateWindow / time.Minute)
	out := make([]minuteCount, n)
	for i := range out {
		out[i].Start = end.Add(time.Duration(i-n+1) * time.Minute)
	}
	for _, m := range r.minutes {
		if i := n - 1 - int(end.Sub(m.Start)/time.Minute); i >= 0 && i < n {
			out[i] = m
		}
	}
	return out
}
