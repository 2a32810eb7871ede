package worker

import "sync"

// seqWindow is which stream sequences this worker settled, exactly, among
// the most recent ones: a bit per sequence in a ring that slides forward
// with the highest sequence marked. It is what tells "a redelivery of an
// event this worker settled (its ack lost with a leader)" from "an event
// that never reached this worker's lanes before a later one of its
// waybill did (a delivery lost in transit)": the first may be acked
// without a call, the second must be delivered, late rather than lost.
//
// Sequences are the stream's, shared by all partitions (each sequence is
// one partition's), so one window serves the worker and keeps what it
// knows across a partition released and taken again. Safe for concurrent
// use.
type seqWindow struct {
	mu    sync.Mutex
	words []uint64 // ring of len(words)*64 bits; a power of two words
	base  uint64   // lowest sequence covered, a multiple of 64
}

// seqWindowBits is the span a worker's window covers: 2^20 sequences,
// 128 KiB; at 10,000 events a second about 100 s, well past the AckWait
// after which a redelivery comes.
const seqWindowBits = 1 << 20

func newSeqWindow(bits int) *seqWindow {
	n := 1
	for n*64 < bits {
		n *= 2
	}
	return &seqWindow{words: make([]uint64, n)}
}

// top is the first sequence past the window.
func (w *seqWindow) top() uint64 { return w.base + uint64(len(w.words))*64 }

// mark records that seq was settled by this worker. The window slides
// forward to take a sequence past its top, forgetting the oldest.
func (w *seqWindow) mark(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq < w.base {
		return // older than the window: forgotten already
	}
	n := uint64(len(w.words))
	if top := w.top(); seq >= top {
		base := (seq/64 + 1 - n) * 64 // seq's word is then the last
		for b := w.base; b < base && b < top; b += 64 {
			w.words[(b/64)&(n-1)] = 0
		}
		w.base = base
	}
	w.words[(seq/64)&(n-1)] |= 1 << (seq % 64)
}

// settled reports whether this worker settled seq; known is false when seq
// is older than the window, so the window cannot tell.
func (w *seqWindow) settled(seq uint64) (settled, known bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq < w.base {
		return false, false
	}
	if seq >= w.top() {
		return false, true
	}
	return w.words[(seq/64)&uint64(len(w.words)-1)]&(1<<(seq%64)) != 0, true
}
