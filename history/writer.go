package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/rs/zerolog"
)

// Defaults of WriterConfig.
const (
	BufferDefault       = 8192
	BatchDefault        = 256
	BatchTimeoutDefault = 5 * time.Second
	// dropLogEvery bounds the "records dropped" log lines to one per
	// interval however many are dropped.
	dropLogEvery = 10 * time.Second
)

// WriterConfig sets up a Writer. The zero value is usable.
type WriterConfig struct {
	// Buffer is how many records may wait to be written; more are dropped
	// (and counted) rather than wait. It bounds the Writer's memory.
	// Default BufferDefault.
	Buffer int
	// Batch is how many records are published before waiting for their
	// PubAcks. Default BatchDefault.
	Batch int
	// BatchTimeout bounds the wait for one batch's PubAcks. Default
	// BatchTimeoutDefault.
	BatchTimeout time.Duration
	// Logger gets a warning, at most every 10 s, while records are dropped.
	Logger zerolog.Logger
	// OnWritten and OnDropped, when set, count records stored and records
	// lost (buffer full, stream unavailable, invalid), for metrics. They
	// are called from any goroutine, Add's callers included, and must be
	// quick and safe for concurrent use.
	OnWritten func(n int)
	OnDropped func(n int)
}

// WithDefaults returns a copy of c with every zero field at its default.
func (c WriterConfig) WithDefaults() WriterConfig {
	if c.Buffer == 0 {
		c.Buffer = BufferDefault
	}
	if c.Batch == 0 {
		c.Batch = BatchDefault
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = BatchTimeoutDefault
	}
	if c.OnWritten == nil {
		c.OnWritten = func(int) {}
	}
	if c.OnDropped == nil {
		c.OnDropped = func(int) {}
	}
	return c
}

// Validate checks c after WithDefaults.
func (c WriterConfig) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "history: WriterConfig."}
	if c.Buffer < 1 {
		errs.Add("Buffer", "%d: use 1 or more (default %d)", c.Buffer, BufferDefault)
	}
	if c.Batch < 1 {
		errs.Add("Batch", "%d: use 1 or more (default %d)", c.Batch, BatchDefault)
	}
	if c.BatchTimeout <= 0 {
		errs.Add("BatchTimeout", "%s: use a positive duration (default %s)", c.BatchTimeout, BatchTimeoutDefault)
	}
	return errs.Err()
}

// Writer stores records in the background. Add never blocks. Close
// flushes what is buffered. Safe for concurrent use.
type Writer struct {
	js  jetstream.JetStream
	cfg WriterConfig

	in      chan Record
	done    chan struct{}
	close   sync.Once
	mu      sync.RWMutex // Add holds it shared; Close exclusively, to close in
	closed  bool
	dropped atomic.Uint64
	written atomic.Uint64
	lastLog atomic.Int64 // unix nanos of the last "dropped" log line
}

// NewWriter starts a Writer on js.
func NewWriter(js jetstream.JetStream, cfg WriterConfig) (*Writer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("history: NewWriter needs a JetStream handle")
	}
	w := &Writer{js: js, cfg: cfg, in: make(chan Record, cfg.Buffer), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Add queues r to be written. When the buffer is full, or after Close, r
// is dropped and counted: history never holds up delivery.
func (w *Writer) Add(r Record) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(1, errors.New("writer closed"))
		return
	}
	select {
	case w.in <- r:
	default:
		w.drop(1, fmt.Errorf("%d records waiting already (buffer full)", w.cfg.Buffer))
	}
}

// Written and Dropped count the records stored and lost so far.
func (w *Writer) Written() uint64 { return w.written.Load() }
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Close stops taking records and writes what is buffered, until ctx ends;
// what is left then is dropped. Safe to call more than once.
func (w *Writer) Close(ctx context.Context) error {
	w.close.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.in)
		w.mu.Unlock()
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) drop(n int, why error) {
	w.dropped.Add(uint64(n))
	w.cfg.OnDropped(n)
	now := time.Now().UnixNano()
	last := w.lastLog.Load()
	if now-last >= int64(dropLogEvery) && w.lastLog.CompareAndSwap(last, now) {
		w.cfg.Logger.Warn().Err(why).Uint64("dropped_total", w.dropped.Load()).
			Msg("history records dropped; delivery goes on")
	}
}

// run publishes batches until in is closed and drained.
func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Record, 0, w.cfg.Batch)
	for r := range w.in {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < w.cfg.Batch {
			select {
			case r, ok := <-w.in:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.publish(batch)
	}
}

// publish writes one batch. All records but the last go out as plain
// publishes, the last as a JetStream publish whose PubAck is awaited: the
// server handles one connection's messages in order, so that PubAck says
// the records before it reached the stream too, and a missing stream or a
// lost connection fails it. One acknowledged message a batch instead of one
// a record: history is written for every delivery, and per-record PubAcks
// cost a sixth of the pipeline's throughput.
func (w *Writer) publish(batch []Record) {
	msgs := make([]*nats.Msg, 0, len(batch))
	bad := 0
	var firstErr error
	for _, r := range batch {
		if err := r.Validate(); err != nil {
			bad++
			firstErr = cmpErr(firstErr, err)
			continue
		}
		data, err := r.encode()
		if err != nil {
			bad++
			firstErr = cmpErr(firstErr, err)
			continue
		}
		msgs = append(msgs, &nats.Msg{Subject: Subject(r.WaybillID), Data: data})
	}
	if len(msgs) == 0 {
		w.account(0, bad, firstErr)
		return
	}
	nc := w.js.Conn()
	for i, m := range msgs[:len(msgs)-1] {
		if err := nc.PublishMsg(m); err != nil {
			n := len(msgs) - i
			w.account(0, bad+n, cmpErr(firstErr, err))
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.BatchTimeout)
	defer cancel()
	if _, err := w.js.PublishMsg(ctx, msgs[len(msgs)-1]); err != nil {
		w.account(0, bad+len(msgs), cmpErr(firstErr, err))
		return
	}
	w.account(len(msgs), bad, firstErr)
}

func (w *Writer) account(ok, bad int, why error) {
	if ok > 0 {
		w.written.Add(uint64(ok))
		w.cfg.OnWritten(ok)
	}
	if bad > 0 {
		w.drop(bad, why)
	}
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
