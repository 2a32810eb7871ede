package pause

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Watcher follows a deployment's pause record; Watch starts one.
type Watcher struct {
	kw     jetstream.KeyWatcher
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Watch calls f with the pause record of t as it is now, before it
// returns, and again after every change, from one goroutine, until Stop.
// It creates Bucket when it is missing, so a worker can follow pauses
// made after it started. ctx bounds only the setup. f must not block for
// long: changes wait behind it.
func Watch(ctx context.Context, js jetstream.JetStream, t Target, f func(Record)) (*Watcher, error) {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return nil, err
	}
	kv, err := bucket(ctx, js, t, true)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	kw, err := kv.Watch(wctx, t.Consumer)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pause: watch %s in bucket %s: %w", t.Consumer, Bucket, err)
	}
	w := &Watcher{kw: kw, cancel: cancel, done: make(chan struct{})}
	// The watcher sends the current value, if any, then nil.
	var cur Record
	for initial := true; initial; {
		select {
		case e, ok := <-kw.Updates():
			switch {
			case !ok:
				cancel()
				return nil, fmt.Errorf("pause: watch %s in bucket %s ended at once", t.Consumer, Bucket)
			case e == nil:
				initial = false
			default:
				cur = decode(e)
			}
		case <-ctx.Done():
			cancel()
			_ = kw.Stop()
			return nil, fmt.Errorf("pause: watch %s in bucket %s: %w", t.Consumer, Bucket, ctx.Err())
		}
	}
	f(cur)
	go func() {
		defer close(w.done)
		for e := range kw.Updates() {
			if e != nil {
				f(decode(e))
			}
		}
	}()
	return w, nil
}

// Stop ends the watch and waits until f is no longer called. Safe to call
// more than once.
func (w *Watcher) Stop() {
	w.once.Do(func() {
		w.cancel()
		_ = w.kw.Stop()
	})
	<-w.done
}
