package deadletter

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Index is an in-memory catalogue of the dead-letter stream: every
// record's headers (Record without Event), in stream order. It exists so
// that a page over 100,000 dead letters, their counts by reason and
// errcode, and the preview of a replay are answered without reading the
// stream each time: Refresh reads only the records added since the last
// refresh, and learns removals (replays, purges, by anyone) from the
// stream's first sequence and its list of deleted sequences.
//
// Memory is about 200 bytes a record plus its errmsg. What it answers is
// as of the last Refresh; the actions themselves (Store.Replay, Purge)
// always read the stream. An Index is safe for concurrent use.
type Index struct {
	s *Store

	refreshing sync.Mutex // one Refresh at a time

	mu        sync.RWMutex
	recs      []Record // by Seq, ascending
	malformed map[uint64]bool
	last      uint64 // the last sequence read
	first     uint64 // the stream's FirstSeq at the last look at deletions
	deleted   int    // the stream's NumDeleted then
	ready     bool
}

// NewIndex returns an empty Index on s; Refresh fills it.
func NewIndex(s *Store) *Index { return &Index{s: s, malformed: map[uint64]bool{}} }

// Refresh brings the index up to date with the stream.
func (ix *Index) Refresh(ctx context.Context) error {
	ix.refreshing.Lock()
	defer ix.refreshing.Unlock()
	st, err := ix.s.stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", pathupdate.DeadLetterStream, err)
	}
	state := info.State
	// Interior deletions only ever grow the deleted set, and it shrinks
	// only when the first sequence moves past some of them: with both
	// unchanged, nothing was removed since the last look.
	var gone map[uint64]bool
	if state.FirstSeq != ix.first || state.NumDeleted != ix.deleted {
		if state.NumDeleted > 0 {
			if info, err = st.Info(ctx, jetstream.WithDeletedDetails(true)); err != nil {
				return fmt.Errorf("stream %s: deleted sequences: %w", pathupdate.DeadLetterStream, err)
			}
			state = info.State
		}
		gone = make(map[uint64]bool, len(state.Deleted))
		for _, q := range state.Deleted {
			gone[q] = true
		}
	}

	// Read what was added, outside the lock: a page may be answered
	// meanwhile from what is known.
	var added []Record
	var bad []uint64
	if state.LastSeq > ix.last {
		f := Filter{FromSeq: ix.last + 1}
		snap, err := ix.s.snapshot(ctx, f)
		if err != nil {
			return err
		}
		err = ix.s.scan(ctx, snap, f, true, func(r Record) error {
			added = append(added, r)
			return nil
		}, func(seq uint64, _ error) { bad = append(bad, seq) })
		if err != nil {
			return err
		}
		if snap.last > state.LastSeq {
			state.LastSeq = snap.last
		}
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	if gone != nil {
		removed := func(seq uint64) bool { return seq < state.FirstSeq || gone[seq] }
		ix.recs = slices.DeleteFunc(ix.recs, func(r Record) bool { return removed(r.Seq) })
		for q := range ix.malformed {
			if removed(q) {
				delete(ix.malformed, q)
			}
		}
		ix.first, ix.deleted = state.FirstSeq, state.NumDeleted
	}
	ix.recs = append(ix.recs, added...)
	for _, q := range bad {
		ix.malformed[q] = true
	}
	if state.LastSeq > ix.last {
		ix.last = state.LastSeq
	}
	ix.ready = true
	return nil
}

// Ready reports whether a Refresh has succeeded once.
func (ix *Index) Ready() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.ready
}

// Forget drops the records with these sequences at once (an action just
// removed them), before the next Refresh confirms it.
func (ix *Index) Forget(seqs ...uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.recs = slices.DeleteFunc(ix.recs, func(r Record) bool { return slices.Contains(seqs, r.Seq) })
}

// Page is a part of what a filter selects, with the counts of the whole.
type Page struct {
	Records []Record // at most the size asked for, in stream order
	Stats   Stats    // of every record the filter selects (Malformed: of the whole stream)
	// Waybills are the distinct waybills the filter selects, in the
	// order of their first record.
	Waybills []string
	// Next is the Filter.FromSeq of the page after this one; 0 when this
	// is the last. Prev is that of the page before; 0 when this is the
	// first.
	Next, Prev uint64
	// Newest is the highest sequence the index knew of when it answered.
	Newest uint64
}

// Page returns up to size records that f selects from f.FromSeq on, the
// counts of everything f selects (FromSeq aside) and the cursors of the
// pages next to it. Paging is by sequence, so a page stays the same
// size and cost however deep it is.
func (ix *Index) Page(f Filter, size int) Page {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	from := f.FromSeq
	f.FromSeq = 0
	p := Page{Stats: Stats{ByReason: map[string]int{}, ByErrCode: map[int]int{}, Malformed: len(ix.malformed)}, Newest: ix.last}
	seen := map[string]bool{}
	// The last size sequences selected before from (a ring): the first
	// of them starts the page before.
	ring, n := make([]uint64, max(size, 1)), 0
	for _, r := range ix.recs {
		if !f.Match(r) {
			continue
		}
		p.Stats.Total++
		p.Stats.ByReason[r.Reason]++
		p.Stats.ByErrCode[r.ErrCode]++
		if w := r.WaybillID; !seen[w] {
			seen[w] = true
			p.Waybills = append(p.Waybills, w)
		}
		switch {
		case r.Seq < from:
			ring[n%len(ring)] = r.Seq
			n++
		case len(p.Records) < size:
			p.Records = append(p.Records, r)
		case p.Next == 0:
			p.Next = r.Seq
		}
	}
	if n > 0 {
		p.Prev = ring[max(0, n-len(ring))%len(ring)]
	}
	return p
}

// Waybill returns waybillID's dead letters, in stream order.
func (ix *Index) Waybill(waybillID string) []Record {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []Record
	for _, r := range ix.recs {
		if r.WaybillID == waybillID {
			out = append(out, r)
		}
	}
	return out
}
