package worker

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

func TestSeqWindow(t *testing.T) {
	t.Parallel()
	w := newSeqWindow(256) // 4 words: sequences base..base+255
	type step struct {
		mark    uint64 // 0: none
		ask     uint64
		settled bool
		known   bool
	}
	steps := []step{
		{ask: 5, known: true}, // nothing settled yet
		{mark: 5, ask: 5, settled: true, known: true},
		{ask: 4, known: true},
		{ask: 255, known: true},
		{ask: 10_000, known: true}, // past the top: not settled
		{mark: 255, ask: 255, settled: true, known: true},
		{mark: 300, ask: 300, settled: true, known: true}, // slides one word: 64..319
		{ask: 5, known: false},                            // forgotten
		{ask: 255, settled: true, known: true},
		{ask: 64, known: true},
		{mark: 10, ask: 10, known: false},                             // too old to mark
		{mark: 1_000_000, ask: 1_000_000, settled: true, known: true}, // slides past everything
		{ask: 300, known: false},
		{ask: 1_000_000 - 1, known: true}, // a word cleared by the slide
		{ask: 1_000_000 - 130, known: true},
	}
	for i, s := range steps {
		if s.mark != 0 {
			w.mark(s.mark)
		}
		if settled, known := w.settled(s.ask); settled != s.settled || known != s.known {
			t.Fatalf("step %d: settled(%d) = %v, %v; want %v, %v", i, s.ask, settled, known, s.settled, s.known)
		}
	}
}

// TestStaleConfirmed: a redelivery below a settled event of its waybill
// is acked without a call only when its own event is known settled (by
// this worker, or in the history), or is too old to tell; otherwise it is
// delivered late, not lost (a delivery lost in transit, issue 16's chaos
// failure).
func TestStaleConfirmed(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := history.EnsureStream(ctx, js, history.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	hw, err := history.NewWriter(js, history.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// W6 was settled by another holder; WLATER has only its later event
	// (7) on record; WRETRY's event 6 was only tried.
	hw.Add(history.Record{State: history.Delivered, WaybillID: "W6", Seq: 6, At: at})
	hw.Add(history.Record{State: history.Delivered, WaybillID: "WLATER", Seq: 7, At: at})
	hw.Add(history.Record{State: history.Retrying, WaybillID: "WRETRY", Seq: 6, At: at})
	if err := hw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store := history.NewStore(js, nil)

	tests := []struct {
		name    string
		waybill string
		marked  []uint64 // settled by this worker
		history bool
		want    bool
	}{
		{"settled by this worker", "WLATER", []uint64{6, 7}, false, true},
		{"older than the window", "WLATER", []uint64{7, 6 + 10_000}, false, true},
		{"not settled, no history", "WLATER", []uint64{7}, false, false},
		{"settled by another holder, on record", "W6", []uint64{7}, true, true},
		{"only a later event on record", "WLATER", []uint64{7}, true, false},
		{"only tried", "WRETRY", []uint64{7}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &Worker{settledWin: newSeqWindow(1024)}
			if tc.history {
				w.historyStore = store
			}
			for _, s := range tc.marked {
				w.settledWin.mark(s)
			}
			p := &partition{w: w, softCtx: ctx, log: zerolog.Nop()}
			h := &held{waybill: tc.waybill, seq: 6}
			if got := p.staleConfirmed(h); got != tc.want {
				t.Fatalf("staleConfirmed = %v, want %v", got, tc.want)
			}
			if h.late == tc.want {
				t.Fatalf("late = %v with staleConfirmed %v: its Settlement must say Late exactly when it is delivered", h.late, tc.want)
			}
			if late := w.stats.deliveredLate.Load(); (late == 1) == tc.want {
				t.Fatalf("DeliveredLate %d with staleConfirmed %v", late, tc.want)
			}
		})
	}
}
