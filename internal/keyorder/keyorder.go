package keyorder

import (
	"context"
	"fmt"
	"sync"
)

// DefaultConcurrency is Config.Concurrency when it is left 0.
const DefaultConcurrency = 16

// Config configures a Runner. The zero value is usable.
type Config struct {
	// Concurrency bounds the keys whose tasks run at once; default
	// DefaultConcurrency (16).
	Concurrency int
	// Queue bounds the tasks given to Go and not yet finished (running or
	// waiting for their key's earlier tasks or for a free key slot); Go
	// blocks while it is reached. Default: Concurrency.
	Queue int
	// HaltOnFailure makes the first failure of any key hold back every
	// task not yet begun, of every key; default false: only the later
	// tasks of the key that failed are held back.
	HaltOnFailure bool
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Queue == 0 {
		c.Queue = c.Concurrency
	}
	return c
}

// Validate reports the first field of c (after WithDefaults) that is wrong.
func (c Config) Validate() error {
	if c.Concurrency < 1 {
		return fmt.Errorf("keyorder.Config.Concurrency is %d: use a positive count (default %d)", c.Concurrency, DefaultConcurrency)
	}
	if c.Queue < 1 {
		return fmt.Errorf("keyorder.Config.Queue is %d: use a positive count (default: Concurrency)", c.Queue)
	}
	return nil
}

// Task is one piece of work under a key.
type Task struct {
	// Run does the work. A non-nil error is the key's failure: every later
	// task of the key is held back (with HaltOnFailure, every task not yet
	// begun).
	Run func() error
	// HeldBack, when set, is called instead of Run for a task that is held
	// back. It may be called from Go's goroutine or from a task's.
	HeldBack func(*HeldBackError)
}

// HeldBackError says why a task was not run: Cause is the error of the
// task that failed before it (of its key, or of any key with
// HaltOnFailure). errors.Is and errors.As see Cause through it.
type HeldBackError struct {
	Key   string // the held-back task's key
	Cause error
}

func (e *HeldBackError) Error() string {
	return fmt.Sprintf("held back (key %q): an earlier task failed: %v", e.Key, e.Cause)
}

func (e *HeldBackError) Unwrap() error { return e.Cause }

// Runner runs tasks in order per key and concurrently across keys. Make
// one per batch with New, give it tasks with Go, then call Wait. Go is safe
// to call from several goroutines (one key's tasks then run in the order
// their Go calls took them); Wait must not run while a Go call does.
type Runner struct {
	cfg   Config
	queue chan struct{} // a token per task given and not finished
	slots chan struct{} // a token per key running

	mu     sync.Mutex
	keys   map[string]*pending // keys with a task waiting or running
	failed map[string]error    // the first failure of each key that failed
	first  error               // the first failure of any key
	wg     sync.WaitGroup      // one per key in keys
}

// pending is a key's tasks not yet begun, in Go order.
type pending struct{ tasks []Task }

// New returns a Runner for cfg (after WithDefaults).
func New(cfg Config) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Runner{
		cfg:    cfg,
		queue:  make(chan struct{}, cfg.Queue),
		slots:  make(chan struct{}, cfg.Concurrency),
		keys:   make(map[string]*pending),
		failed: make(map[string]error),
	}, nil
}

// Go gives the Runner task under key: it runs after every task given
// earlier under key has finished. Go blocks while Config.Queue tasks are
// unfinished; if ctx ends first it returns ctx.Err() and the task is
// neither run nor held back. A task of a key that already failed (or, with
// HaltOnFailure, of any key once one failed) is held back at once.
func (r *Runner) Go(ctx context.Context, key string, task Task) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case r.queue <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	if cause := r.heldBy(key); cause != nil {
		r.mu.Unlock()
		<-r.queue
		hold(task, key, cause)
		return nil
	}
	if p, busy := r.keys[key]; busy {
		p.tasks = append(p.tasks, task)
		r.mu.Unlock()
		return nil
	}
	p := &pending{tasks: []Task{task}}
	r.keys[key] = p
	r.wg.Add(1)
	r.mu.Unlock()
	go r.drain(key, p)
	return nil
}

// drain runs key's tasks one after the other, holding one key slot, until
// none is left.
func (r *Runner) drain(key string, p *pending) {
	defer r.wg.Done()
	r.slots <- struct{}{}
	defer func() { <-r.slots }()
	for {
		r.mu.Lock()
		if len(p.tasks) == 0 {
			delete(r.keys, key)
			r.mu.Unlock()
			return
		}
		task := p.tasks[0]
		p.tasks[0] = Task{} // let the finished task's closure go
		p.tasks = p.tasks[1:]
		cause := r.heldBy(key)
		r.mu.Unlock()
		if cause != nil {
			hold(task, key, cause)
		} else if err := task.Run(); err != nil {
			r.fail(key, err)
		}
		<-r.queue
	}
}

// heldBy is the failure that holds key's next task back, or nil. r.mu is
// held.
func (r *Runner) heldBy(key string) error {
	if r.cfg.HaltOnFailure && r.first != nil {
		return r.first
	}
	return r.failed[key]
}

func (r *Runner) fail(key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.failed[key]; !ok {
		r.failed[key] = err
	}
	if r.first == nil {
		r.first = err
	}
}

func hold(task Task, key string, cause error) {
	if task.HeldBack != nil {
		task.HeldBack(&HeldBackError{Key: key, Cause: cause})
	}
}

// Wait returns once every task given to Go has run or been held back, and
// reports the first failure (the first error a Run returned), or nil.
func (r *Runner) Wait() error {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// Failed is the first failure so far, or nil: a producer can stop giving
// tasks once it is not nil (with HaltOnFailure they would all be held
// back).
func (r *Runner) Failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}
