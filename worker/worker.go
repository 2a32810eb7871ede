package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/retry"
)

// PriorityGroup is the pinned priority group of every partition consumer:
// JetStream delivers a partition to one pinned worker at a time.
const PriorityGroup = "pathupdate"

// Deliverer calls logistics.updatePath; *pathupdate.Client is one.
type Deliverer interface {
	UpdatePath(ctx context.Context, ev pathupdate.Event) pathupdate.Outcome
}

// DeadLetterWriter stores a dead letter and returns once it is stored
// (PubAck); *deadletter.Writer is one.
type DeadLetterWriter interface {
	// Append stores r and returns its sequence in the dead-letter stream.
	Append(ctx context.Context, r deadletter.Record) (uint64, error)
}

// errStopping says a held message was not settled because its partition
// is being released; handBack returns it to JetStream.
var errStopping = errors.New("worker stopping")

// Worker is one process's delivery engine. Workers started with the same
// Config share the trace stream's partitions: each announces itself in
// MembersBucket, every worker computes the same assignment from the live
// members, and each consumes the partitions assigned to it through
// pinned partition consumers. Start it once; Stop it once or more.
type Worker struct {
	cfg        Config
	js         jetstream.JetStream
	api        Deliverer
	dl         DeadLetterWriter
	breaker    *retry.Breaker
	log        zerolog.Logger
	stats      counters
	slots      *callSlots // bounds API calls in progress, busiest lane first
	callers    *callers   // make the API calls
	partitions int
	members    *membership
	rate       *rateShare   // this worker's share of Config.RateLimit (rate.go)
	quota      *quotaState  // WeChat's quota, watched and obeyed (quota.go)
	tracer     trace.Tracer // nil: tracing off (tracing.go)
	spanOpts   spanOptions  // the start options of tracer's spans
	// historyStore reads the delivery history for redeliveries a previous
	// holder may have settled (settled.go); nil without Config.History.
	historyStore *history.Store
	// settledWin is which recent stream sequences this worker settled
	// (seqwindow.go): a redelivery below a settled one of its waybill is
	// acked without a call only if it was settled itself.
	settledWin *seqWindow

	mu      sync.Mutex
	started bool
	looping bool // loop runs: Stop waits for it
	parts   map[int]*partition
	// evicting counts partitions being released because their pin moved
	// (pinmoved.go); Stop waits for them.
	evicting sync.WaitGroup

	unpartitioned jetstream.ConsumeContext // messages stored without a partition (unpartitioned.go)
	credentials   string                   // why WeChat refuses the credentials; "" when it does not (credentials.go)
	probing       sync.WaitGroup           // the credentials probe running in the background

	// The operator's pause (pause.go): operatorPause and pauseMoved
	// (closed and replaced at every change) under mu.
	operatorPause pause.Record
	pauseMoved    chan struct{}
	pauseWatch    *pause.Watcher
	pauseChanged  chan struct{}
	pausing       sync.WaitGroup // keepPause

	loopCtx  context.Context
	stopLoop context.CancelFunc
	loopDone chan struct{}
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
		cfg:      cfg,
		js:       js,
		api:      api,
		dl:       dl,
		breaker:  retry.NewBreaker(cfg.Breaker),
		log:      cfg.Logger.With().Str("component", "worker").Str("member", cfg.MemberID).Logger(),
		slots:    newCallSlots(cfg.Concurrency, cfg.Now, slotMaxWait),
		callers:  newCallers(api),
		parts:    make(map[int]*partition),
		rate:     newRateShare(cfg.RateLimit),
		quota:    newQuotaState(),
		loopDone: make(chan struct{}),
		stopped:  make(chan struct{}),

		pauseChanged: make(chan struct{}, 1),
		pauseMoved:   make(chan struct{}),
		tracer:       pathupdate.TracerOf(cfg.TracerProvider),
		spanOpts:     newSpanOptions(),
		settledWin:   newSeqWindow(seqWindowBits),
	}
	if cfg.History != nil {
		w.historyStore = history.NewStore(js, cfg.Now)
	}
	w.loopCtx, w.stopLoop = context.WithCancel(context.Background())
	return w, nil
}

// ID is the member id this worker announces.
func (w *Worker) ID() string { return w.cfg.MemberID }

// consumerConfig is the durable, pinned consumer of partition n, shared by
// every worker of a deployment.
func (w *Worker) consumerConfig(n int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       pathupdate.PartitionConsumer(w.cfg.Consumer, n),
		Description:   fmt.Sprintf("pathupdate workers: partition %d of %s", n, pathupdate.TraceStream),
		FilterSubject: pathupdate.PartitionFilter(n),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxAckPending: w.cfg.MaxInFlight,
		// Our own retry budget decides when an event is given up on;
		// JetStream redelivers only what a dead or stopped worker held.
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroup},
		PinnedTTL:      w.cfg.PinnedTTL,
		// Taken only when the consumer is created: an update keeps the
		// consumer's own pause, so a restart never lifts one.
		PauseUntil: w.OperatorPause().ConsumerPauseUntil(w.cfg.Now()),
	}
}

// ConsumerName is the durable consumer of partition n for a deployment
// whose Config.Consumer is prefix (pathupdate.PartitionConsumer).
func ConsumerName(prefix string, n int) string { return pathupdate.PartitionConsumer(prefix, n) }

// Start joins the workers sharing the trace stream and begins consuming
// the partitions assigned to this one. The streams must exist
// (pathupdate.EnsureStreams), on a server no older than
// pathupdate.MinServerVersion (else a *pathupdate.ServerTooOldError). ctx
// bounds only the setup: Start tries again until it ends, except after an
// error no wait can clear (pathupdate.PermanentStartError).
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("worker: Start called twice")
	}
	w.started = true
	w.mu.Unlock()

	if err := pathupdate.RequireServer(w.js.Conn()); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	st, err := w.js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w (create it with pathupdate.EnsureStreams)", pathupdate.TraceStream, err)
	}
	if w.partitions, err = pathupdate.TracePartitions(ctx, w.js); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	replicas := st.CachedInfo().Config.Replicas
	w.checkCredentials(ctx)
	// A cluster that has just formed can take a while to place a new
	// replicated bucket or consumer: keep trying until ctx ends, unless
	// waiting cannot help.
	// The pause record is known before any consumer is created, so one
	// created while delivery is paused is created paused.
	if err := w.untilDone(ctx, "pause record", w.followPause); err != nil {
		return err
	}
	if err := w.untilDone(ctx, "join", func(ctx context.Context) error {
		if w.members == nil {
			m, err := openMembership(ctx, w.js, w.cfg.MemberID, w.cfg.MemberTTL, replicas, w.cfg.Now())
			if err != nil {
				return err
			}
			m.health = w.Health
			m.totals = w.totals
			w.members = m
		}
		if err := w.members.beat(ctx, nil, 0, w.cfg.Now()); err != nil {
			return fmt.Errorf("worker: announce in %s: %w", MembersBucket, err)
		}
		return w.rebalance(ctx)
	}); err != nil {
		return err
	}
	if err := w.untilDone(ctx, "unpartitioned messages", w.startUnpartitioned); err != nil {
		return err
	}
	if err := w.untilDone(ctx, "quota bucket", func(ctx context.Context) error { return w.startQuota(ctx, replicas) }); err != nil {
		return err
	}
	w.mu.Lock()
	w.looping = true
	w.mu.Unlock()
	go w.loop()
	w.log.Info().Int("partitions", w.partitions).Int("max_in_flight", w.cfg.MaxInFlight).
		Int("concurrency", w.cfg.Concurrency).Msg("worker started")
	return nil
}

// untilDone runs f until it succeeds, fails in a way waiting cannot fix
// (pathupdate.PermanentStartError: a server too old, JetStream refused),
// or ctx ends, waiting a little longer after each failure, each attempt
// bounded by 10 s.
func (w *Worker) untilDone(ctx context.Context, what string, f func(context.Context) error) error {
	return retry.Until(ctx, retry.UntilConfig{
		AttemptTimeout: 10 * time.Second,
		OnFailure: func(err error, _ int, wait time.Duration) {
			w.log.Warn().Err(err).Dur("retry_in", wait).Msg(what + ": JetStream not ready; trying again")
		},
	}, func(ctx context.Context) error {
		err := f(ctx)
		if pathupdate.PermanentStartError(err) {
			return retry.Permanent(err)
		}
		return err
	})
}

// loop renews this worker's membership and follows the assignment as
// workers come and go.
func (w *Worker) loop() {
	defer close(w.loopDone)
	every := max(w.cfg.MemberTTL/3, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	beats := make(chan struct{}, 1)
	go func() { // beats never wait for a slow rebalance
		for {
			select {
			case <-w.loopCtx.Done():
				close(beats)
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(w.loopCtx, every)
			owned, heldN := w.owned()
			if err := w.members.beat(ctx, owned, heldN, w.cfg.Now()); err != nil && w.loopCtx.Err() == nil {
				w.log.Warn().Err(err).Msg("membership heartbeat")
			}
			cancel()
			select {
			case beats <- struct{}{}:
			default:
			}
		}
	}()
	for range beats {
		ctx, cancel := context.WithTimeout(w.loopCtx, 10*time.Second)
		if err := w.rebalance(ctx); err != nil && w.loopCtx.Err() == nil {
			w.log.Warn().Err(err).Msg("rebalance")
		}
		cancel()
	}
}

// owned lists the partitions this worker holds and the messages it holds.
func (w *Worker) owned() ([]int, int) {
	w.mu.Lock()
	parts := make([]*partition, 0, len(w.parts))
	ns := make([]int, 0, len(w.parts))
	for n, p := range w.parts {
		parts = append(parts, p)
		ns = append(ns, n)
	}
	w.mu.Unlock()
	slices.Sort(ns)
	total := 0
	for _, p := range parts {
		h, _ := p.counts()
		total += h
	}
	return ns, total
}

// rebalance brings the partitions held in line with the assignment over
// the live members: it releases what is no longer this worker's (handing
// the messages back in order and unpinning) and starts what is new.
func (w *Worker) rebalance(ctx context.Context) error {
	members, err := listMembers(ctx, w.members.kv)
	if err != nil {
		return fmt.Errorf("worker: list members: %w", err)
	}
	ids := make([]string, 0, len(members)+1)
	for _, m := range members {
		ids = append(ids, m.ID)
	}
	if !slices.Contains(ids, w.cfg.MemberID) {
		// Our entry expired (a long pause); we are still alive and say so
		// with the next beat. Meanwhile count ourselves in.
		ids = append(ids, w.cfg.MemberID)
		slices.Sort(ids)
	}
	w.membersSeen(ids)
	want := assignment(ids, w.partitions, w.cfg.MemberID)

	w.mu.Lock()
	var drop []*partition
	for n, p := range w.parts {
		if !slices.Contains(want, n) {
			drop = append(drop, p)
			delete(w.parts, n)
		}
	}
	w.mu.Unlock()
	w.releaseAll(drop)

	for _, n := range want {
		w.mu.Lock()
		_, have := w.parts[n]
		w.mu.Unlock()
		if have || w.loopCtx.Err() != nil {
			continue
		}
		p := w.newPartition(n)
		if err := p.start(ctx); err != nil {
			return err
		}
		w.mu.Lock()
		w.parts[n] = p
		w.mu.Unlock()
		w.log.Info().Int("partition", n).Int("members", len(ids)).Msg("partition taken")
	}
	return nil
}

// releaseAll releases partitions concurrently.
func (w *Worker) releaseAll(parts []*partition) {
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := p.release(w.cfg.ShutdownTimeout)
			w.log.Info().Int("partition", p.n).Int("handed_back", n).Msg("partition released")
		}()
	}
	wg.Wait()
}

// Stop stops pulling, lets API calls in progress finish (at most
// ShutdownTimeout, then cancels them), hands every unsettled held message
// back to JetStream in stream order so another worker takes it at once,
// leaves the membership, and returns. Safe to call more than once and on a
// never-started Worker.
func (w *Worker) Stop(ctx context.Context) error {
	w.stopOnce.Do(func() {
		defer close(w.stopped)
		w.mu.Lock()
		looping := w.looping
		w.mu.Unlock()
		w.stopLoop()
		w.probing.Wait()
		w.quota.done.Wait()
		if looping {
			select {
			case <-w.loopDone:
			case <-ctx.Done():
				w.stopErr = ctx.Err()
			}
		}
		w.mu.Lock()
		parts := make([]*partition, 0, len(w.parts))
		for _, p := range w.parts {
			parts = append(parts, p)
		}
		clear(w.parts)
		w.mu.Unlock()
		w.releaseAll(parts)
		w.evicting.Wait()
		w.callers.close() // every lane has ended: no call is left
		w.stopUnpartitioned()
		w.stopFollowingPause()
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if w.members != nil {
			if err := w.members.leave(lctx); err != nil {
				w.log.Debug().Err(err).Msg("leave membership")
			}
		}
		w.log.Info().Msg("worker stopped")
	})
	<-w.stopped
	return w.stopErr
}

// Consuming reports whether the worker has joined and not begun to stop.
// A worker that holds no partition (more workers than partitions) is
// consuming too: it stands by and takes a share when one moves.
func (w *Worker) Consuming() bool {
	w.mu.Lock()
	looping := w.looping
	w.mu.Unlock()
	return looping && w.loopCtx.Err() == nil
}

// Stopped is closed once Stop has finished.
func (w *Worker) Stopped() <-chan struct{} { return w.stopped }

// BreakerState tells whether delivery is paused as a whole.
func (w *Worker) BreakerState() retry.BreakerState { return w.breaker.State() }
