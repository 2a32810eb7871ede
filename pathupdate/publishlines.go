package pathupdate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadAheadPerPending is how many lines PublishLines holds, read and
// waiting for their turn, per publish it may have in flight (MaxPending):
// a waybill's lines go one after the other, so input that keeps a
// waybill's lines together (a per-parcel export) needs lines of many
// waybills at hand to keep MaxPending publishes in flight. 16 × the
// default 1024 is about 16,000 events, a few MiB.
const ReadAheadPerPending = 16

// lineBatch is how many decoded lines the reading goroutine hands over at
// once: one channel operation per batch, not per line.
const lineBatch = 64

// lineSlab is the size of the blocks readLines copies lines into.
const lineSlab = 32 << 10

// Summary counts what PublishLines did with its input.
type Summary struct {
	Accepted   int         // stored by the stream
	Duplicates int         // already in the stream (same Nats-Msg-Id within the duplicate window)
	Invalid    int         // lines that are not a valid event: not published
	Failed     int         // valid events not acknowledged (they may or may not be stored; publishing them again is safe), and those held back behind one of their waybill's (ErrHeldBack)
	Errors     []LineError // the first MaxLineErrors invalid or failed lines
}

// LineError is why one input line was not stored. Err matches
// ErrInvalidEvent for an invalid line.
type LineError struct {
	Line int // 1-based, blank lines counted
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e LineError) Unwrap() error { return e.Err }

// ErrHeldBack is matched (errors.Is) by the LineError of a line that
// PublishLines did not publish because an earlier line of the same waybill
// was not acknowledged: publishing it would put the waybill's events out
// of order once the earlier one is published again.
var ErrHeldBack = errors.New("not published: held back behind an earlier event of its waybill that was not acknowledged")

// PublishLines reads JSON lines from r (one event a line, blank lines
// skipped, lines up to MaxLineBytes) and publishes every valid one as
// Publish would, asynchronously with at most MaxPending unacknowledged.
// Invalid lines are counted with their line numbers and not published.
//
// Order per waybill is kept across failures: a line is published only
// once the previous line of its waybill is acknowledged, and once a line
// of a waybill is not acknowledged the later lines of that waybill are
// not published but counted as Failed (ErrHeldBack). Publishing the same
// input again then puts every waybill's events into the stream in input
// order, the ones already stored being duplicates within the duplicate
// window. Lines of different waybills do not wait for each other: while
// a waybill's line waits for the previous one's PubAck, reading goes on
// (up to ReadAheadPerPending × MaxPending lines waiting), so the stream
// may store lines of different waybills in another order than the input's.
//
// Every line read before ctx was cancelled or reading failed is published
// in its turn and its PubAck awaited (each for at most AckTimeout), so the
// Summary is exact. The error is non-nil only for a reading failure or
// ctx; publish failures are counted in Summary.Failed. progress, if not
// nil, is called every ProgressEvery settled lines and once at the end,
// never concurrently.
func (p *Publisher) PublishLines(ctx context.Context, r io.Reader, progress func(Summary)) (Summary, error) {
	if progress == nil {
		progress = func(Summary) {}
	}
	// Reading and decoding run in their own goroutine; this one publishes
	// and settles, and alone owns the bookkeeping (no locks).
	lines := make(chan []lineItem, 4)
	free := make(chan []lineItem, cap(lines)+2) // every batch there can be: recycle never blocks
	readErr := make(chan error, 1)
	go func() { readErr <- p.readLines(ctx, r, lines, free) }()
	t := &tally{progress: progress}
	d := p.newOrdered(ordered{
		maxPending: p.cfg.MaxPending,
		readAhead:  ReadAheadPerPending * p.cfg.MaxPending,
		parent:     context.Background(), // each line starts its own trace
		settled: func(it *lineItem, ack *jetstream.PubAck, err error) {
			if err != nil && !errors.Is(err, ErrInvalidEvent) && !errors.Is(err, ErrHeldBack) {
				p.log.Debug().Int("line", it.n).Err(MaskPhonesError(err)).Msg("publish not acknowledged")
			}
			t.line(it.n, err, ack != nil && ack.Duplicate)
		},
		heldBack: func(first *lineItem, _ error) error {
			return fmt.Errorf("%w (line %d of waybill %s was not): publish the input again", ErrHeldBack, first.n, first.waybill)
		},
		recycle: func(b []lineItem) {
			select {
			case free <- b:
			default:
			}
		},
	})
	d.run(lines)
	err := <-readErr
	progress(cloneSummary(t.sum))
	return t.sum, err
}

// readLines reads r and hands every non-blank line, decoded, to out in
// batches, in input order; it closes out when it stops. It stops at the
// end of r, at a reading failure or once ctx is done: a line read after
// that is not handed over. Batches come back through free to be filled
// again.
func (p *Publisher) readLines(ctx context.Context, r io.Reader, out chan<- []lineItem, free <-chan []lineItem) error {
	defer close(out)
	br := bufio.NewReaderSize(r, 64<<10)
	batch := make([]lineItem, 0, lineBatch)
	flush := func() {
		if len(batch) > 0 {
			out <- batch
			select {
			case batch = <-free:
			default:
				batch = make([]lineItem, 0, lineBatch)
			}
		}
	}
	// Lines' bytes are copied into slabs, not one allocation each: a slab
	// lives until the last of its lines is published.
	var slab []byte
	copyLine := func(line []byte) []byte {
		if cap(slab)-len(slab) < len(line) {
			slab = make([]byte, 0, max(lineSlab, len(line)))
		}
		n := len(slab)
		slab = append(slab, line...)
		return slab[n:len(slab):len(slab)]
	}
	defer flush() // runs before close(out)
	var buf []byte
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish lines: stopped before line %d: %w", n, err)
		}
		// Hand over what is decoded before a read that may block (a
		// producer piping lines in as they happen must not wait for a
		// batch to fill).
		if br.Buffered() == 0 {
			flush()
		}
		line, tooLong, err := readLine(br, buf[:0])
		buf = line
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("publish lines: read line %d: %w", n, err)
		}
		if tooLong {
			batch = append(batch, lineItem{n: n, err: fmt.Errorf("%w: line longer than %d bytes", ErrInvalidEvent, MaxLineBytes)})
		} else if len(bytes.TrimSpace(line)) == 0 {
			continue
		} else {
			// A line as Encode writes it (most producers' output, and
			// this publisher's) is its own canonical encoding.
			ev, canonical := decodeCanonical(line)
			var err error
			if !canonical {
				ev, err = decodeEvent(line)
				if err == nil {
					err = validateForPublish(ev) // decodeEvent validates; this only guarantees the sentinel
				}
			}
			if err != nil {
				batch = append(batch, lineItem{n: n, err: err})
			} else {
				// A line read after cancellation is not published.
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("publish lines: stopped at line %d: %w", n, err)
				}
				var data []byte
				if canonical {
					data = copyLine(line) // line is reused for the next one
				} else {
					data = ev.Encode()
				}
				batch = append(batch, lineItem{n: n, waybill: ev.WaybillID, subject: TraceSubject(ev.WaybillID), msgID: ev.ID(), data: data})
			}
		}
		if len(batch) == cap(batch) {
			flush()
		}
	}
}

// tally counts what happened to each line; lines settle in any order.
// Only the dispatching goroutine uses it.
type tally struct {
	sum      Summary
	settled  int
	progress func(Summary)
}

// line counts one settled line: err nil for a stored one.
func (t *tally) line(n int, err error, duplicate bool) {
	switch {
	case errors.Is(err, ErrInvalidEvent):
		t.sum.Invalid++
	case err != nil:
		t.sum.Failed++
	case duplicate:
		t.sum.Duplicates++
	default:
		t.sum.Accepted++
	}
	if err != nil {
		// Keep the first MaxLineErrors lines, in line order.
		le := LineError{Line: n, Err: err}
		i, _ := slices.BinarySearchFunc(t.sum.Errors, n, func(e LineError, n int) int { return e.Line - n })
		if i < MaxLineErrors {
			t.sum.Errors = slices.Insert(t.sum.Errors, i, le)
			if len(t.sum.Errors) > MaxLineErrors {
				t.sum.Errors = t.sum.Errors[:MaxLineErrors]
			}
		}
	}
	if t.settled++; t.settled%ProgressEvery == 0 {
		t.progress(cloneSummary(t.sum))
	}
}

// readLine reads one line into buf without its line ending. A line longer
// than MaxLineBytes is consumed whole and reported tooLong. At the end of
// the input it returns io.EOF with no line.
func readLine(br *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	for {
		frag, more, err := br.ReadLine()
		if err != nil {
			return buf, tooLong, err
		}
		if !tooLong {
			if len(buf)+len(frag) > MaxLineBytes {
				tooLong, buf = true, buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if !more {
			return buf, tooLong, nil
		}
	}
}

// cloneSummary gives progress a copy the dispatching goroutine never
// touches again.
func cloneSummary(s Summary) Summary {
	s.Errors = slices.Clone(s.Errors)
	return s
}
