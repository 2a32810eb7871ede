package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// Deliverer calls logistics.updatePath; *pathupdate.Client is one.
type Deliverer interface {
	UpdatePath(ctx context.Context, ev pathupdate.Event) pathupdate.Outcome
}

// DeadLetterWriter stores a dead letter and returns once it is stored
// (PubAck); *deadletter.Writer is one.
type DeadLetterWriter interface {
	Write(ctx context.Context, r deadletter.Record) error
}

// errStopping says a held message was not settled because the worker is
// stopping; the lane hands it back to JetStream.
var errStopping = errors.New("worker stopping")

// Worker is one consuming process's delivery engine. Start it once; Stop it
// once or more.
type Worker struct {
	cfg     Config
	js      jetstream.JetStream
	api     Deliverer
	dl      DeadLetterWriter
	breaker *retry.Breaker
	log     zerolog.Logger
	stats   counters

	// softCtx ends when Stop begins: lanes stop waiting and hand back what
	// they hold. callCtx ends when the shutdown timeout runs out: API calls
	// still in progress are cancelled.
	softCtx     context.Context
	cancelSoft  context.CancelFunc
	callCtx     context.Context
	cancelCalls context.CancelFunc

	sem chan struct{} // bounds API calls in progress

	mu         sync.Mutex
	started    bool
	stopping   bool
	handedBack bool // Stop has Nak'ed what was held
	lanes      map[string]*lane
	held       map[uint64]*held

	lanesWG  sync.WaitGroup
	cc       jetstream.ConsumeContext
	stopOnce sync.Once
	stopped  chan struct{}
	stopErr  error
}

// New builds a Worker. api and dl are required.
func New(js jetstream.JetStream, api Deliverer, dl DeadLetterWriter, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil || api == nil || dl == nil {
		return nil, errors.New("worker: New needs a JetStream handle, a Deliverer and a DeadLetterWriter")
	}
	cfg.Breaker.Logger = cfg.Logger // one log for the worker and its breaker
	onChange := cfg.Breaker.OnChange
	cfg.Breaker.OnChange = func(from, to retry.BreakerState) {
		cfg.Observer.BreakerChanged(from, to)
		if onChange != nil {
			onChange(from, to)
		}
	}
	w := &Worker{
		cfg:     cfg,
		js:      js,
		api:     api,
		dl:      dl,
		breaker: retry.NewBreaker(cfg.Breaker),
		log:     cfg.Logger.With().Str("component", "worker").Logger(),
		sem:     make(chan struct{}, cfg.Concurrency),
		lanes:   make(map[string]*lane),
		held:    make(map[uint64]*held),
		stopped: make(chan struct{}),
	}
	w.softCtx, w.cancelSoft = context.WithCancel(context.Background())
	w.callCtx, w.cancelCalls = context.WithCancel(context.Background())
	return w, nil
}

// ConsumerConfig is the durable consumer every worker of a deployment
// shares.
func (w *Worker) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       w.cfg.Consumer,
		Description:   "pathupdate workers: deliver trace events to logistics.updatePath",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxAckPending: w.cfg.MaxInFlight,
		// Our own retry budget decides when an event is given up on;
		// JetStream redelivers only what a dead or stopped worker held.
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Start creates or updates the durable consumer and begins consuming. The
// streams must exist (pathupdate.EnsureStreams). ctx bounds only the setup.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("worker: Start called twice")
	}
	w.started = true
	w.mu.Unlock()

	cons, err := w.js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, w.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("worker: create consumer %q on stream %s: %w", w.cfg.Consumer, pathupdate.TraceStream, err)
	}
	batch := min(w.cfg.MaxInFlight, 256)
	cc, err := cons.Consume(w.handle,
		jetstream.PullMaxMessages(batch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.log.Warn().Err(err).Msg("consume")
		}))
	if err != nil {
		return fmt.Errorf("worker: consume %q: %w", w.cfg.Consumer, err)
	}
	w.mu.Lock()
	w.cc = cc
	w.mu.Unlock()

	w.lanesWG.Add(1)
	go w.keepAlive()
	w.log.Info().Str("consumer", w.cfg.Consumer).Int("max_in_flight", w.cfg.MaxInFlight).
		Int("concurrency", w.cfg.Concurrency).Msg("worker started")
	return nil
}

// Stop stops pulling, lets API calls in progress finish (at most
// ShutdownTimeout, then cancels them), hands every unsettled held message
// back to JetStream with a Nak so another worker takes it at once, and
// returns. Safe to call more than once and on a never-started Worker.
func (w *Worker) Stop(ctx context.Context) error {
	w.stopOnce.Do(func() {
		defer close(w.stopped)
		w.mu.Lock()
		w.stopping = true
		cc := w.cc
		w.mu.Unlock()

		hard := time.NewTimer(w.cfg.ShutdownTimeout)
		defer hard.Stop()
		if cc != nil {
			// Drain hands what the client buffered to handle, which Naks it.
			cc.Drain()
			select {
			case <-cc.Closed():
			case <-hard.C:
				cc.Stop()
			case <-ctx.Done():
				cc.Stop()
			}
		}
		w.cancelSoft()
		done := make(chan struct{})
		go func() { w.lanesWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-hard.C:
			w.log.Warn().Dur("timeout", w.cfg.ShutdownTimeout).Msg("shutdown timeout: cancelling API calls in progress")
			w.cancelCalls()
			<-done
		case <-ctx.Done():
			w.cancelCalls()
			<-done
			w.stopErr = ctx.Err()
		}
		w.cancelCalls()
		n := w.handBack()
		w.log.Info().Int("handed_back", n).Msg("worker stopped")
	})
	<-w.stopped
	return w.stopErr
}

// Stopped is closed once Stop has finished.
func (w *Worker) Stopped() <-chan struct{} { return w.stopped }

// BreakerState tells whether delivery is paused as a whole.
func (w *Worker) BreakerState() retry.BreakerState { return w.breaker.State() }

// handBack Naks every message still held, in stream order, so JetStream
// redelivers them (to another worker at once) in the order they were
// published: its redelivery queue is first-in first-out, so Nak'ing a
// waybill's later message before its earlier one would reorder the trace.
func (w *Worker) handBack() int {
	w.mu.Lock()
	w.handedBack = true
	hs := make([]*held, 0, len(w.held))
	for _, h := range w.held {
		hs = append(hs, h)
	}
	clear(w.held)
	w.mu.Unlock()
	slices.SortFunc(hs, func(a, b *held) int { return cmp.Compare(a.seq, b.seq) })
	for _, h := range hs {
		if err := h.msg.Nak(); err != nil {
			w.log.Debug().Err(err).Uint64("seq", h.seq).Msg("hand back")
		}
	}
	w.stats.handedBack.Add(uint64(len(hs)))
	return len(hs)
}

// keepAlive tells JetStream every AckWait/3 that each held message is
// still being worked on, so it is not redelivered while it waits behind its
// waybill's head or for a retry.
func (w *Worker) keepAlive() {
	defer w.lanesWG.Done()
	every := max(w.cfg.AckWait/3, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-w.softCtx.Done():
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		w.mu.Lock()
		for _, h := range w.held {
			msgs = append(msgs, h.msg)
		}
		w.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				w.log.Debug().Err(err).Msg("keep-alive")
			}
		}
	}
}
