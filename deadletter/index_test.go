package deadletter

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestIndexFollowsTheStream: the index agrees with a full read of the
// stream (Store.Stats, Store.List) after records are added, replayed
// (interior deletes), purged by waybill and purged from the front, by
// the Store rather than through the index.
func TestIndexFollowsTheStream(t *testing.T) {
	e := newStoreEnv(t)
	ctx := opCtx(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ix := NewIndex(e.store)
	if ix.Ready() {
		t.Fatal("Ready before the first Refresh")
	}

	agree := func(step string, f Filter) {
		t.Helper()
		if err := ix.Refresh(ctx); err != nil {
			t.Fatalf("%s: Refresh: %v", step, err)
		}
		want, err := e.store.Stats(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var wantSeqs []uint64
		if err := e.store.List(ctx, f, func(r Record) error { wantSeqs = append(wantSeqs, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		p := ix.Page(f, 1<<20)
		if p.Stats.Total != want.Total || !maps.Equal(p.Stats.ByReason, want.ByReason) || !maps.Equal(p.Stats.ByErrCode, want.ByErrCode) {
			t.Fatalf("%s (%s): index stats %+v, stream %+v", step, f, p.Stats, want)
		}
		var got []uint64
		for _, r := range p.Records {
			got = append(got, r.Seq)
		}
		if !slices.Equal(got, wantSeqs) {
			t.Fatalf("%s (%s): index seqs %v, stream %v", step, f, got, wantSeqs)
		}
	}
	rejected := pathupdate.ErrcodeWaybillNotFound

	e.fill(t, 400, 40, base)
	agree("filled", Filter{})
	agree("filled", Filter{ErrCode: &rejected})
	agree("filled", Filter{Waybill: "W0007"})

	// Interior deletes: replay one waybill's dead letters (no trace
	// subscriber needed: a replay only publishes).
	if _, err := e.store.Replay(ctx, Filter{Waybill: "W0003", Reason: ReasonRejected}, ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	agree("replayed W0003", Filter{})
	agree("replayed W0003", Filter{Waybill: "W0003"})

	// A selection, then more records.
	if _, err := e.store.Purge(ctx, Filter{Seqs: []uint64{10, 20, 30}}); err != nil {
		t.Fatal(err)
	}
	more(t, e, 1000, 100, 40)
	agree("purged a selection, added 100", Filter{})
	agree("purged a selection, added 100", Filter{Reason: ReasonInvalidEvent})

	// From the front: purging everything moves the first sequence.
	if _, err := e.store.Purge(ctx, Filter{}); err != nil {
		t.Fatal(err)
	}
	agree("purged all", Filter{})
	more(t, e, 2000, 10, 5)
	agree("refilled", Filter{})
}

// TestIndexPages: paging by sequence visits every selected record once,
// in order, forward with Next and back with Prev, and the counts are of
// the whole selection on every page.
func TestIndexPages(t *testing.T) {
	e := newStoreEnv(t)
	ctx := opCtx(t)
	e.fill(t, 250, 25, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ix := NewIndex(e.store)
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	sel := pathupdate.ErrcodeIncorrectToken // every 4th record from seq 2: 63 of 250
	tests := []struct {
		name  string
		f     Filter
		total int
	}{
		{"all", Filter{}, 250},
		{"errcode", Filter{ErrCode: &sel}, 63},
		{"waybill", Filter{Waybill: "W0001"}, 10},
		{"selection", Filter{Seqs: []uint64{5, 7, 249}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const size = 20
			var seen []uint64
			var starts []uint64 // FromSeq of each page
			from := uint64(0)
			for pages := 0; ; pages++ {
				if pages > tc.total/size+1 {
					t.Fatalf("more pages than %d records need", tc.total)
				}
				f := tc.f
				f.FromSeq = from
				p := ix.Page(f, size)
				if p.Stats.Total != tc.total {
					t.Fatalf("page from %d: total %d, want %d", from, p.Stats.Total, tc.total)
				}
				starts = append(starts, from)
				for _, r := range p.Records {
					seen = append(seen, r.Seq)
				}
				if p.Next == 0 {
					break
				}
				from = p.Next
			}
			if len(seen) != tc.total || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != tc.total {
				t.Fatalf("pages gave %d records (%v), want %d distinct in order", len(seen), seen, tc.total)
			}
			// Back from the last page: each Prev is the start of the page before.
			for i := len(starts) - 1; i > 0; i-- {
				f := tc.f
				f.FromSeq = starts[i]
				prev := ix.Page(f, size).Prev
				f.FromSeq = starts[i-1]
				if first := ix.Page(f, size).Records[0].Seq; prev != first {
					t.Fatalf("page %d: Prev %d, want %d (first seq of the page before)", i, prev, first)
				}
			}
		})
	}
}

// more appends n synthetic records whose originals are numbered from
// offset+1 (fill's are from 1: the same number would be a duplicate).
func more(t *testing.T, e *storeEnv, offset, n, waybills int) {
	t.Helper()
	base := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := range n {
		r := synth(i, waybills, base)
		r.OriginalSeq += uint64(offset)
		if _, err := e.js.PublishMsg(opCtx(t), r.Msg()); err != nil {
			t.Fatal(err)
		}
	}
}
