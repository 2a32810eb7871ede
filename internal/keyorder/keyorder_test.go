package keyorder

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// within fails the test if ch is not closed (or sent on) within 10 s.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func newRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOrderPerKey(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{Concurrency: 1}, {Concurrency: 4, Queue: 8}, {Concurrency: 64, Queue: 1024}} {
		t.Run(fmt.Sprintf("concurrency %d queue %d", cfg.Concurrency, cfg.Queue), func(t *testing.T) {
			t.Parallel()
			r := newRunner(t, cfg)
			var mu sync.Mutex
			got := make(map[string][]int)
			const keys, perKey = 40, 25
			for i := range keys * perKey {
				key, n := fmt.Sprintf("K%d", i%keys), i/keys
				err := r.Go(t.Context(), key, Task{Run: func() error {
					runtime.Gosched() // let other keys' tasks interleave
					mu.Lock()
					got[key] = append(got[key], n)
					mu.Unlock()
					return nil
				}})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Wait(); err != nil {
				t.Fatal(err)
			}
			for k := range keys {
				key := fmt.Sprintf("K%d", k)
				if len(got[key]) != perKey || !slices.IsSorted(got[key]) {
					t.Fatalf("%s ran %v, want 0..%d in order", key, got[key], perKey-1)
				}
			}
		})
	}
}

// TestKeysRunConcurrently: a task of one key runs while a task of another
// key is still running (they wait for each other: run one at a time, this
// test would hang and fail).
func TestKeysRunConcurrently(t *testing.T) {
	t.Parallel()
	r := newRunner(t, Config{Concurrency: 2})
	aStarted, bStarted := make(chan struct{}), make(chan struct{})
	rendezvous := func(mine chan struct{}, other <-chan struct{}) Task {
		return Task{Run: func() error {
			close(mine)
			select {
			case <-other:
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("the other key never ran alongside")
			}
		}}
	}
	if err := r.Go(t.Context(), "A", rendezvous(aStarted, bStarted)); err != nil {
		t.Fatal(err)
	}
	if err := r.Go(t.Context(), "B", rendezvous(bStarted, aStarted)); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	const limit = 3
	r := newRunner(t, Config{Concurrency: limit, Queue: 100})
	var running, most atomic.Int64
	release := make(chan struct{})
	full := make(chan struct{}, 100)
	for i := range 12 {
		err := r.Go(t.Context(), fmt.Sprint(i), Task{Run: func() error {
			n := running.Add(1)
			for old := most.Load(); n > old && !most.CompareAndSwap(old, n); old = most.Load() {
			}
			full <- struct{}{}
			<-release
			running.Add(-1)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range limit { // the first limit keys start without any release
		within(t, full, "a key to start")
	}
	close(release)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != limit {
		t.Fatalf("at most %d keys ran at once, want %d", m, limit)
	}
}

// TestQueueBound: Go blocks while Queue tasks are unfinished, and returns
// ctx's error if ctx ends first; the task is then neither run nor held.
func TestQueueBound(t *testing.T) {
	t.Parallel()
	r := newRunner(t, Config{Concurrency: 1, Queue: 2})
	release, started := make(chan struct{}), make(chan struct{})
	var ran atomic.Int64
	gate := Task{Run: func() error { close(started); <-release; ran.Add(1); return nil }}
	plain := Task{Run: func() error { ran.Add(1); return nil }, HeldBack: func(*HeldBackError) { t.Error("held back") }}
	if err := r.Go(t.Context(), "A", gate); err != nil {
		t.Fatal(err)
	}
	within(t, started, "the first task")
	if err := r.Go(t.Context(), "B", plain); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := r.Go(ctx, "C", plain); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Go with the queue full: %v, want it to block until ctx ends", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Go(t.Context(), "D", plain); err != nil {
			t.Error(err)
		}
	}()
	close(release)
	within(t, done, "Go to return once a task finished")
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := ran.Load(); n != 3 {
		t.Fatalf("%d tasks ran, want 3 (A, B, D; not C)", n)
	}
	cancelled, stop := context.WithCancel(t.Context())
	stop()
	if err := r.Go(cancelled, "E", plain); !errors.Is(err, context.Canceled) {
		t.Fatalf("Go with a cancelled ctx: %v", err)
	}
	if err := r.Wait(); err != nil || ran.Load() != 3 {
		t.Fatalf("after a refused Go: %v, %d ran", err, ran.Load())
	}
}

// TestFailureHoldsBack: A1 runs first and alone (Concurrency 1, the other
// tasks are given while it runs), so what runs after its result is
// deterministic.
func TestFailureHoldsBack(t *testing.T) {
	t.Parallel()
	type step struct {
		key, name string
		fails     bool
	}
	for _, tc := range []struct {
		name  string
		halt  bool
		steps []step // steps[0] runs first
		ran   string
		held  string // name:cause
		first string
	}{
		{"a failure holds back its key only", false,
			[]step{{"A", "A1", true}, {"A", "A2", false}, {"B", "B1", false}, {"A", "A3", false}, {"B", "B2", false}},
			"A1 B1 B2", "A2:A1 A3:A1", "A1"},
		{"HaltOnFailure holds back every key", true,
			[]step{{"A", "A1", true}, {"A", "A2", false}, {"B", "B1", false}, {"B", "B2", false}},
			"A1", "A2:A1 B1:A1 B2:A1", "A1"},
		{"a later failure of another key", false,
			[]step{{"A", "A1", false}, {"A", "A2", false}, {"B", "B1", true}, {"B", "B2", false}, {"C", "C1", false}},
			"A1 A2 B1 C1", "B2:B1", "B1"},
		{"no failure", true,
			[]step{{"A", "A1", false}, {"B", "B1", false}, {"A", "A2", false}},
			"A1 A2 B1", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRunner(t, Config{Concurrency: 1, Queue: 16, HaltOnFailure: tc.halt})
			var (
				mu        sync.Mutex
				ran, held []string
			)
			started, release := make(chan struct{}), make(chan struct{})
			for i, s := range tc.steps {
				task := Task{
					Run: func() error {
						if i == 0 {
							close(started)
							<-release
						}
						mu.Lock()
						ran = append(ran, s.name)
						mu.Unlock()
						if s.fails {
							return errors.New(s.name)
						}
						return nil
					},
					HeldBack: func(e *HeldBackError) {
						if e.Key != s.key {
							t.Errorf("%s held back under key %q", s.name, e.Key)
						}
						mu.Lock()
						held = append(held, s.name+":"+e.Cause.Error())
						mu.Unlock()
					},
				}
				if err := r.Go(t.Context(), s.key, task); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					within(t, started, "the first task")
				}
			}
			close(release)
			err := r.Wait()
			if fmt.Sprint(err) != tc.first && !(err == nil && tc.first == "") {
				t.Errorf("Wait: %v, want %q", err, tc.first)
			}
			slices.Sort(ran)
			slices.Sort(held)
			if got := strings.Join(ran, " "); got != tc.ran {
				t.Errorf("ran %q, want %q", got, tc.ran)
			}
			if got := strings.Join(held, " "); got != tc.held {
				t.Errorf("held back %q, want %q", got, tc.held)
			}
		})
	}
}

// TestHeldBackAtGo: once a key failed, a task given later is held back
// before Go returns, and the cause is visible through the error.
func TestHeldBackAtGo(t *testing.T) {
	t.Parallel()
	r := newRunner(t, Config{})
	refused := errors.New("refused")
	if err := r.Failed(); err != nil {
		t.Fatalf("Failed before any task: %v", err)
	}
	if err := r.Go(t.Context(), "A", Task{Run: func() error { return refused }}); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(); !errors.Is(err, refused) {
		t.Fatalf("Wait: %v", err)
	}
	if err := r.Failed(); !errors.Is(err, refused) {
		t.Fatalf("Failed after the failure: %v", err)
	}
	var got *HeldBackError
	if err := r.Go(t.Context(), "A", Task{
		Run:      func() error { t.Error("ran after its key failed"); return nil },
		HeldBack: func(e *HeldBackError) { got = e },
	}); err != nil {
		t.Fatal(err)
	}
	if got == nil || !errors.Is(got, refused) || !strings.Contains(got.Error(), `"A"`) {
		t.Fatalf("held back with %v, want the cause %v", got, refused)
	}
	ran := make(chan struct{})
	if err := r.Go(t.Context(), "B", Task{Run: func() error { close(ran); return nil }}); err != nil {
		t.Fatal(err)
	}
	within(t, ran, "another key's task")
	if err := r.Wait(); !errors.Is(err, refused) {
		t.Fatalf("Wait: %v", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if c := (Config{}).WithDefaults(); c.Concurrency != DefaultConcurrency || c.Queue != DefaultConcurrency {
		t.Fatalf("defaults %+v", c)
	}
	if c := (Config{Concurrency: 3}).WithDefaults(); c.Queue != 3 {
		t.Fatalf("Queue default with Concurrency 3: %d", c.Queue)
	}
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Concurrency: -1}, "Concurrency"},
		{Config{Concurrency: 2, Queue: -2}, "Queue"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v): %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}
