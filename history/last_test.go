package history

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	writeRecords(ctx, t, js,
		Record{State: Delivered, WaybillID: "W1", Seq: 3},
		Record{State: Retrying, WaybillID: "W2", Seq: 4},
		Record{State: Delivered, WaybillID: "W1", Seq: 5},
		Record{State: Retrying, WaybillID: "W2", Seq: 6})
	r, err := s.Last(ctx, "W1")
	if err != nil || r.Seq != 5 || r.State != Delivered {
		t.Fatalf("last of W1: %+v, %v; want delivered 5", r, err)
	}
	if _, err := s.Last(ctx, "W3"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("W3: %v, want ErrNoRecord", err)
	}
}

// TestSettled: only a record of the event itself, delivered or
// dead-lettered, proves it settled; a later event's record or a retry of
// its own does not (where SettledBy infers).
func TestSettled(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewStore(js, nil)
	if _, err := s.Settled(ctx, "W1", 3); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("no stream: %v, want ErrNoHistory", err)
	}
	writeRecords(ctx, t, js,
		Record{State: Delivered, WaybillID: "W1", Seq: 3},
		Record{State: Retrying, WaybillID: "W1", Seq: 5},
		Record{State: DeadLettered, WaybillID: "W1", Seq: 8},
		Record{State: Delivered, WaybillID: "W1", Seq: 9},
		Record{State: Delivered, WaybillID: "W2", Seq: 4})
	tests := []struct {
		waybill string
		seq     uint64
		want    bool
	}{
		{"W1", 3, true},
		{"W1", 8, true},  // dead-lettered is settled
		{"W1", 9, true},  // the last record
		{"W1", 5, false}, // only retried
		{"W1", 4, false}, // W2's sequence
		{"W1", 7, false}, // a later event is no proof
		{"W2", 4, true},
		{"W3", 4, false}, // no record at all
	}
	for _, tc := range tests {
		got, err := s.Settled(ctx, tc.waybill, tc.seq)
		if err != nil || got != tc.want {
			t.Errorf("Settled(%s, %d) = %v, %v; want %v", tc.waybill, tc.seq, got, err, tc.want)
		}
	}
}

// writeRecords creates the history stream and writes recs to it, each at
// one fixed time, and waits until they are stored.
func writeRecords(ctx context.Context, t *testing.T, js jetstream.JetStream, recs ...Record) {
	t.Helper()
	if err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(js, WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range recs {
		r.At = at
		w.Add(r)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
