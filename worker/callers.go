package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// callers make the API calls on goroutines of their own, kept from one
// call to the next. A call goes deep into net/http, and a goroutine that
// makes one grows its stack for it: a lane's goroutine making its call
// itself grew a fresh stack, copy after copy, for every lane (5 % of the
// worker's CPU), and one kept to work the next lane held its grown stack
// while it waited for a call slot (thousands of waiting lanes: 25 MiB
// more). Calls run at most Config.Concurrency at once (callSlots), so at
// most that many callers exist; one idle for callerIdle ends, and all end
// at close.
type callers struct {
	api  Deliverer
	jobs chan *callJob // unbuffered: a job goes only to a caller waiting for one
	quit chan struct{}
	wg   sync.WaitGroup
	// started counts the callers ever started (the test's view of reuse).
	started atomic.Int64
	// idleJobs keeps callJobs between calls: one each call cost two
	// allocations (the job and its channel) for every event.
	idleJobs sync.Pool
}

// callJob is one call handed to a caller.
type callJob struct {
	ctx  context.Context
	ev   pathupdate.Event
	o    pathupdate.Outcome
	done chan struct{} // one value when o is set; buffered, so the job can be used again
}

// callerIdle is how long a caller waits for the next call before it ends.
const callerIdle = time.Second

func newCallers(api Deliverer) *callers {
	return &callers{api: api, jobs: make(chan *callJob), quit: make(chan struct{})}
}

// call delivers ev on a caller and returns the outcome.
func (c *callers) call(ctx context.Context, ev pathupdate.Event) pathupdate.Outcome {
	j, _ := c.idleJobs.Get().(*callJob)
	if j == nil {
		j = &callJob{done: make(chan struct{}, 1)}
	}
	j.ctx, j.ev = ctx, ev
	select {
	case c.jobs <- j:
	default:
		c.wg.Add(1)
		c.started.Add(1)
		go c.run(j)
	}
	<-j.done
	o := j.o
	*j = callJob{done: j.done} // no event, context or answer kept while idle
	c.idleJobs.Put(j)
	return o
}

func (c *callers) run(j *callJob) {
	defer c.wg.Done()
	idle := time.NewTimer(callerIdle)
	defer idle.Stop()
	for {
		j.o = c.api.UpdatePath(j.ctx, j.ev)
		j.done <- struct{}{}
		idle.Reset(callerIdle)
		select {
		case j = <-c.jobs:
		case <-idle.C:
			return
		case <-c.quit:
			return
		}
	}
}

// close ends the idle callers once no call is left to make; it waits
// for them.
func (c *callers) close() {
	close(c.quit)
	c.wg.Wait()
}
