package history

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/natstest"
)

func TestSettledBy(t *testing.T) {
	tests := []struct {
		state State
		last  uint64
		seq   uint64
		want  bool
	}{
		{Delivered, 7, 7, true},
		{Delivered, 7, 3, true},
		{Delivered, 3, 7, false},
		{DeadLettered, 7, 7, true},
		{DeadLettered, 7, 8, false},
		{Retrying, 7, 3, true},
		{Retrying, 7, 7, false}, // still being tried: not settled
		{Replayed, 9, 3, false}, // an operator's: says nothing of seq 3
		{Purged, 9, 3, false},
	}
	for _, tc := range tests {
		r := Record{State: tc.state, Seq: tc.last}
		if got := r.SettledBy(tc.seq); got != tc.want {
			t.Errorf("%s of %d settles %d: %v, want %v", tc.state, tc.last, tc.seq, got, tc.want)
		}
	}
}

// TestLast: the newest record of a waybill, whatever else the stream
// holds; none, and no stream, are told apart.
func TestLast(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewStore(js, nil)
	if _, err := s.Last(ctx, "W1"); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("no stream: %v, want ErrNoHistory", err)
	}
	if err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(js, WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.Add(Record{State: Delivered, WaybillID: "W1", Seq: 3, At: at})
	w.Add(Record{State: Retrying, WaybillID: "W2", Seq: 4, At: at})
	w.Add(Record{State: Delivered, WaybillID: "W1", Seq: 5, At: at})
	w.Add(Record{State: Retrying, WaybillID: "W2", Seq: 6, At: at})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.Last(ctx, "W1")
	if err != nil || r.Seq != 5 || r.State != Delivered {
		t.Fatalf("last of W1: %+v, %v; want delivered 5", r, err)
	}
	if _, err := s.Last(ctx, "W3"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("W3: %v, want ErrNoRecord", err)
	}
}
