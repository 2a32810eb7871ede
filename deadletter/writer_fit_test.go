package deadletter

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestWriteFitsOriginalAtMaxPayload: an original published at the
// server's max payload (found by the chaos suite: a hostile producer's
// huge action_msg) cannot be stored whole with the record's headers. The
// write used to fail with "maximum payload exceeded" on every try, so the
// worker never acknowledged the original and its waybill stood still.
// Now the record is stored with the beginning of the event, cut at a
// character boundary, and says how big the original was; a record that
// fits is stored whole.
func TestWriteFitsOriginalAtMaxPayload(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	w := NewWriter(js, WriterConfig{})
	maxPayload := int(js.Conn().MaxPayload())

	head := `{"token":"t","waybill_id":"W1","action_time":1700000000,"action_type":200001,"action_msg":"`
	huge := []byte(head + strings.Repeat("长", (maxPayload-len(head))/3))
	for len(huge) < maxPayload {
		huge = append(huge, ' ')
	}
	tests := []struct {
		name      string
		event     []byte
		truncated bool
	}{
		{"at max payload", huge, true},
		{"just too big with the headers", huge[:maxPayload-100], true},
		{"small", sampleRecord().Event, false},
	}
	for i, tc := range tests {
		r := sampleRecord()
		r.Event = tc.event
		r.OriginalSeq = uint64(100 + i)
		if err := w.Write(testContext(t), r); err != nil {
			t.Fatalf("%s: Write: %v", tc.name, err)
		}
		got := readBack(t, js, r.OriginalSeq)
		switch {
		case !tc.truncated && (got.TruncatedFrom != 0 || !bytes.Equal(got.Event, tc.event)):
			t.Errorf("%s: stored %d bytes, TruncatedFrom %d; want the event whole", tc.name, len(got.Event), got.TruncatedFrom)
		case tc.truncated && got.TruncatedFrom != len(tc.event):
			t.Errorf("%s: TruncatedFrom %d, want %d", tc.name, got.TruncatedFrom, len(tc.event))
		case tc.truncated && (!bytes.HasPrefix(tc.event, got.Event) || len(got.Event) < maxPayload-4096):
			t.Errorf("%s: stored %d bytes, want a prefix of the original close to %d", tc.name, len(got.Event), maxPayload)
		case !utf8.Valid(got.Event):
			t.Errorf("%s: stored event cut inside a character", tc.name)
		}
	}
}

func TestFitLeavesSmallRecordsAlone(t *testing.T) {
	t.Parallel()
	r := sampleRecord()
	r.OriginalSeq = 7
	if got := fit(r, 1<<20); got.TruncatedFrom != 0 || !bytes.Equal(got.Event, r.Event) {
		t.Fatalf("fit changed a small record: %+v", got)
	}
	if got := fit(r, 0); !bytes.Equal(got.Event, r.Event) {
		t.Fatal("fit with an unknown max payload changed the record")
	}
	// Exactly at the limit stays whole; one byte less cuts.
	limit := int64(len(r.Event) + headerBytes(wireMsg(r).Header))
	if got := fit(r, limit); got.TruncatedFrom != 0 {
		t.Fatalf("a record of exactly the max payload was cut: %+v", got)
	}
	got := fit(r, limit-1)
	if got.TruncatedFrom != len(r.Event) || int64(len(got.Event)+headerBytes(wireMsg(got).Header)) > limit-1 {
		t.Fatalf("fit to %d: %d event bytes + %d header bytes, TruncatedFrom %d", limit-1, len(got.Event), headerBytes(wireMsg(got).Header), got.TruncatedFrom)
	}
}

// TestHeaderBytesMatchesTheWire checks the size headerBytes computes
// against the client's own max payload check, so fit cannot under-count.
func TestHeaderBytesMatchesTheWire(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, false)
	nc := js.Conn()
	r := sampleRecord()
	r.OriginalSeq = 9
	r.TruncatedFrom = 1 << 20
	h := wireMsg(r).Header
	room := int(nc.MaxPayload()) - headerBytes(h)
	if err := nc.PublishMsg(&nats.Msg{Subject: "fit.test", Header: h, Data: make([]byte, room)}); err != nil {
		t.Fatalf("a message of exactly the max payload by headerBytes was refused: %v", err)
	}
	err := nc.PublishMsg(&nats.Msg{Subject: "fit.test", Header: h, Data: make([]byte, room+1)})
	if !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("one byte more: %v, want nats.ErrMaxPayload", err)
	}
}

// readBack finds the dead letter of the original sequence seq.
func readBack(t *testing.T, js jetstream.JetStream, seq uint64) Record {
	t.Helper()
	st := deadLetterStream(t, js)
	info, err := st.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for s := info.State.FirstSeq; s <= info.State.LastSeq; s++ {
		m, err := st.GetMsg(testContext(t), s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := FromRawMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		if r.OriginalSeq == seq {
			return r
		}
	}
	t.Fatalf("no dead letter of original seq %d", seq)
	return Record{}
}
