package deadletter

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// startJetStream runs a real embedded JetStream server (random port, temp
// store); withStreams creates pathupdate's streams on it.
func startJetStream(t *testing.T, withStreams bool) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	if withStreams {
		if err := pathupdate.EnsureStreams(testContext(t), js, pathupdate.StreamsConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func deadLetterStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(testContext(t), pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func storedCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	info, err := deadLetterStream(t, js).Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func sampleRecord() Record {
	return Record{
		Event:           []byte(`{"token":"t","waybill_id":"W1","action_time":1700000000,"action_type":200001,"action_msg":"到达"}`),
		WaybillID:       "W1",
		Reason:          ReasonRejected,
		ErrCode:         pathupdate.ErrcodeWaybillNotFound,
		ErrMsg:          "waybill not exist",
		Attempts:        3,
		OriginalSubject: "5.logistics.trace.W1",
		OriginalSeq:     1234,
		FirstAttempt:    time.Date(2025, 3, 1, 8, 0, 0, 1, time.FixedZone("CST", 8*3600)),
		LastAttempt:     time.Date(2025, 3, 1, 0, 0, 2, 999999999, time.UTC),
		FailedAt:        time.Date(2025, 3, 1, 0, 0, 3, 500, time.UTC),
		Replays:         1,
	}
}

// sameRecord compares field by field; times by instant.
func sameRecord(t *testing.T, got, want Record) {
	t.Helper()
	if !bytes.Equal(got.Event, want.Event) || got.WaybillID != want.WaybillID || got.Reason != want.Reason ||
		got.ErrCode != want.ErrCode || got.ErrMsg != want.ErrMsg || got.Attempts != want.Attempts ||
		got.OriginalSubject != want.OriginalSubject || got.OriginalSeq != want.OriginalSeq ||
		!got.FirstAttempt.Equal(want.FirstAttempt) || !got.LastAttempt.Equal(want.LastAttempt) ||
		!got.FailedAt.Equal(want.FailedAt) || got.Replays != want.Replays || got.Seq != want.Seq {
		t.Errorf("record read back\n got %+v\nwant %+v", got, want)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	ctx := testContext(t)
	want := sampleRecord()
	if err := NewWriter(js, WriterConfig{}).Write(ctx, want); err != nil {
		t.Fatal(err)
	}
	want.Seq = 1

	raw, err := deadLetterStream(t, js).GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "logistics.deadletter.W1" {
		t.Errorf("stored on %q", raw.Subject)
	}
	got, err := FromRawMsg(raw)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, want)
	if got.FailedAt.Location() != time.UTC {
		t.Errorf("times read back in %v, want UTC", got.FailedAt.Location())
	}

	// The same through a consumer, as list and replay will read.
	c, err := deadLetterStream(t, js).CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, err = FromMsg(m)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, want)
}

func TestWriteTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	ctx := testContext(t)
	w := NewWriter(js, WriterConfig{})
	r := sampleRecord()

	if err := w.Write(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The worker crashed before acking the original; on redelivery it
	// fails again, a little later, with more attempts.
	r.Attempts, r.FailedAt = 4, r.FailedAt.Add(time.Minute)
	if err := w.Write(ctx, r); err != nil {
		t.Fatalf("duplicate write: %v", err)
	}
	if n := storedCount(t, js); n != 1 {
		t.Fatalf("%d records stored, want 1", n)
	}
	// Another original of the same waybill is another record.
	r.OriginalSeq++
	if err := w.Write(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := storedCount(t, js); n != 2 {
		t.Errorf("%d records stored, want 2", n)
	}
}

func TestWriteOddHeaderContent(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	ctx := testContext(t)
	w := NewWriter(js, WriterConfig{})
	errmsgs := []string{
		"line one\r\nPathupdate-Reason: forged\r\n\r\nbody",
		"  leading and trailing  \t",
		"tab\there nul\x00 bell\a",
		"系统繁忙，请稍后再试",
		"invalid \xff\xfe utf8",
		strings.Repeat("长", 400) + "end", // 1203 bytes
		"",
	}
	for i, msg := range errmsgs {
		r := sampleRecord()
		r.OriginalSeq = uint64(100 + i)
		r.ErrMsg = msg
		if err := w.Write(ctx, r); err != nil {
			t.Fatalf("errmsg %q: %v", msg, err)
		}
		raw, err := deadLetterStream(t, js).GetLastMsgForSubject(ctx, "logistics.deadletter.W1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromRawMsg(raw)
		if err != nil {
			t.Fatalf("errmsg %q: read back: %v", msg, err)
		}
		want := singleLine(msg, MaxErrMsgBytes)
		if got.ErrMsg != want || got.Reason != ReasonRejected || got.OriginalSeq != r.OriginalSeq {
			t.Errorf("errmsg %q read back as %q (reason %q), want %q", msg, got.ErrMsg, got.Reason, want)
		}
		if strings.ContainsAny(got.ErrMsg, "\r\n") || len(got.ErrMsg) > MaxErrMsgBytes {
			t.Errorf("errmsg header not single-line and capped: %q", got.ErrMsg)
		}
		if len(raw.Header[ReasonHeader]) != 1 {
			t.Errorf("errmsg %q smuggled a header: %v", msg, raw.Header)
		}
	}
}

func TestWriteInvalidWaybillGoesToInvalidSubject(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	ctx := testContext(t)
	w := NewWriter(js, WriterConfig{})
	for i, waybill := range []string{"", "W.1", "*", "a b\r\n", strings.Repeat("x", 65)} {
		r := sampleRecord()
		r.Reason, r.ErrCode, r.WaybillID, r.OriginalSeq = ReasonInvalidEvent, 0, waybill, uint64(i+1)
		r.Event = []byte("not json at all\x00")
		if err := w.Write(ctx, r); err != nil {
			t.Fatalf("waybill %q: %v", waybill, err)
		}
		raw, err := deadLetterStream(t, js).GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if raw.Subject != "logistics.deadletter.~invalid" {
			t.Errorf("waybill %q stored on %q", waybill, raw.Subject)
		}
		got, err := FromRawMsg(raw)
		if err != nil || got.WaybillID != "" || got.Reason != ReasonInvalidEvent || !bytes.Equal(got.Event, r.Event) {
			t.Errorf("waybill %q read back as %+v, %v", waybill, got, err)
		}
	}
}

func TestWriteFillsFailedAt(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	ctx := testContext(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r := sampleRecord()
	r.FailedAt = time.Time{}
	if err := NewWriter(js, WriterConfig{Now: func() time.Time { return now }}).Write(ctx, r); err != nil {
		t.Fatal(err)
	}
	raw, err := deadLetterStream(t, js).GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := FromRawMsg(raw); err != nil || !got.FailedAt.Equal(now) {
		t.Errorf("FailedAt = %v, %v; want %v", got.FailedAt, err, now)
	}
}

func TestWriteRefusesBadRecordAndMissingStream(t *testing.T) {
	t.Parallel()
	js := startJetStream(t, true)
	ctx := testContext(t)
	w := NewWriter(js, WriterConfig{})
	r := sampleRecord()
	r.Reason = "bored"
	if err := w.Write(ctx, r); err == nil || !strings.Contains(err.Error(), "Record.Reason") {
		t.Errorf("bad reason: err = %v", err)
	}
	if n := storedCount(t, js); n != 0 {
		t.Errorf("%d records stored, want 0", n)
	}

	bare := startJetStream(t, false)
	err := NewWriter(bare, WriterConfig{}).Write(ctx, sampleRecord())
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || !strings.Contains(err.Error(), pathupdate.DeadLetterStream+" is missing") {
		t.Errorf("missing stream: err = %v", err)
	}
}
