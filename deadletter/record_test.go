package deadletter

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

func TestSubjectOfWaybill(t *testing.T) {
	t.Parallel()
	for waybill, want := range map[string]string{
		"SF1234567890":             "logistics.deadletter.SF1234567890",
		"a-b_C9":                   "logistics.deadletter.a-b_C9",
		strings.Repeat("w", 64):    "logistics.deadletter." + strings.Repeat("w", 64),
		"":                         "logistics.deadletter.~invalid",
		"W.1":                      "logistics.deadletter.~invalid",
		"*":                        "logistics.deadletter.~invalid",
		">":                        "logistics.deadletter.~invalid",
		"a b":                      "logistics.deadletter.~invalid",
		"é":                        "logistics.deadletter.~invalid",
		"$JS":                      "logistics.deadletter.~invalid",
		strings.Repeat("w", 65):    "logistics.deadletter.~invalid",
		InvalidWaybill:             "logistics.deadletter.~invalid",
		"W1\r\nPathupdate-Reason:": "logistics.deadletter.~invalid",
		// A valid waybill id, however it looks: its own subject, where
		// replay finds it (older versions put it with the invalid ones).
		"_invalid": "logistics.deadletter._invalid",
	} {
		if got := (Record{WaybillID: waybill}).Subject(); got != want {
			t.Errorf("Subject of waybill %q = %q, want %q", waybill, got, want)
		}
	}
}

func TestMsgIDDerivesFromOriginalSeq(t *testing.T) {
	t.Parallel()
	r := Record{OriginalSeq: 42, ErrMsg: "one"}
	if got := r.Msg().Header.Get("Nats-Msg-Id"); got != "dl-LOGISTICS_TRACE-42" {
		t.Errorf("Nats-Msg-Id = %q", got)
	}
	r.ErrMsg, r.Attempts = "another", 9 // a second try of the same original
	if r.MsgID() != "dl-LOGISTICS_TRACE-42" {
		t.Errorf("MsgID depends on more than the original sequence: %q", r.MsgID())
	}
}

func TestSingleLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("系统繁忙", 100) // 1200 bytes
	tests := []struct{ in, want string }{
		{"ok", "ok"},
		{"  padded \t", "padded"},
		{"line one\r\nline two\nthree\rfour", "line one  line two three four"},
		{"nul\x00 del\x7f c1\u0085 ls\u2028 ps\u2029", "nul  del  c1  ls  ps"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"\n\n", ""},
	}
	for _, tt := range tests {
		if got := singleLine(tt.in, MaxErrMsgBytes); got != tt.want {
			t.Errorf("singleLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := singleLine(long, MaxErrMsgBytes)
	if len(got) > MaxErrMsgBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("long errmsg cut to %d bytes: %q", len(got), got)
	}
	if again := singleLine(got, MaxErrMsgBytes); again != got {
		t.Errorf("singleLine not idempotent: %q -> %q", got, again)
	}
}

func validHeaders() nats.Header {
	return Record{
		Reason: ReasonRejected, ErrCode: 40199, ErrMsg: "waybill not found", Attempts: 1,
		OriginalSubject: "3.logistics.trace.W1", OriginalSeq: 7,
		FirstAttempt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), LastAttempt: time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
		FailedAt: time.Date(2025, 1, 2, 3, 4, 7, 123456789, time.UTC), Replays: 2,
	}.headers()
}

func TestFromHeadersNamesTheBadHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, value string // value "" deletes the header
	}{
		{ReasonHeader, ""},
		{ReasonHeader, " \r\n "},
		{ErrcodeHeader, "forty"},
		{ErrcodeHeader, "99999999999999999999"},
		{AttemptsHeader, "-1"},
		{AttemptsHeader, "1.5"},
		{OriginalSubjectHeader, ""},
		{OriginalSeqHeader, ""},
		{OriginalSeqHeader, "0"},
		{OriginalSeqHeader, "-3"},
		{FirstAttemptHeader, "yesterday"},
		{LastAttemptHeader, "2025-01-02 03:04:05"},
		{FailedAtHeader, ""},
		{FailedAtHeader, "0001-01-01T00:00:00Z"},
		{ReplaysHeader, "-2"},
		{ReplaysHeader, "x"},
	}
	for _, tt := range tests {
		h := validHeaders()
		if tt.value == "" {
			h.Del(tt.header)
		} else {
			h.Set(tt.header, tt.value)
		}
		_, err := fromHeaders(h)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.header) {
			t.Errorf("%s = %q: err = %v, want ErrMalformed naming the header", tt.header, tt.value, err)
		}
	}

	// Optional headers may be missing.
	h := validHeaders()
	for _, name := range []string{ErrcodeHeader, ErrmsgHeader, AttemptsHeader, FirstAttemptHeader, LastAttemptHeader, ReplaysHeader} {
		h.Del(name)
	}
	r, err := fromHeaders(h)
	if err != nil || r.ErrCode != 0 || r.Attempts != 0 || !r.FirstAttempt.IsZero() || r.Replays != 0 {
		t.Errorf("minimal headers: %+v, %v", r, err)
	}

	// A reason this version does not know still reads (a newer writer).
	h = validHeaders()
	h.Set(ReasonHeader, "quarantined")
	if r, err := fromHeaders(h); err != nil || r.Reason != "quarantined" {
		t.Errorf("unknown reason: %+v, %v", r, err)
	}
}

func TestFromRawMsgChecksSubject(t *testing.T) {
	t.Parallel()
	if _, err := FromRawMsg(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil: %v", err)
	}
	// The header set is valid; only the subject is wrong.
	for _, subj := range []string{"logistics.trace.W1", "3.logistics.trace.W1", "other"} {
		_, err := fromParts(subj, 1, validHeaders(), nil)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), subj) {
			t.Errorf("subject %q: err = %v", subj, err)
		}
	}
}

func TestRecordValidate(t *testing.T) {
	t.Parallel()
	ok := Record{Reason: ReasonRetriesExhausted, OriginalSubject: "0.logistics.trace.W", OriginalSeq: 1, FailedAt: time.Unix(1, 0)}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	for field, mutate := range map[string]func(*Record){
		"Reason":          func(r *Record) { r.Reason = "gone" },
		"OriginalSeq":     func(r *Record) { r.OriginalSeq = 0 },
		"OriginalSubject": func(r *Record) { r.OriginalSubject = "" },
		"Attempts":        func(r *Record) { r.Attempts = -1 },
		"Replays":         func(r *Record) { r.Replays = -1 },
		"FailedAt":        func(r *Record) { r.FailedAt = time.Time{} },
	} {
		r := ok
		mutate(&r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "Record."+field) {
			t.Errorf("%s: err = %v, want one naming Record.%s", field, err, field)
		}
	}
}

func TestReplaysOf(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]int{"": 0, "0": 0, "3": 3} {
		h := nats.Header{}
		if value != "" {
			h.Set(ReplaysHeader, value)
		}
		if got, err := ReplaysOf(h); err != nil || got != want {
			t.Errorf("ReplaysOf(%q) = %d, %v; want %d", value, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "many"} {
		h := nats.Header{}
		h.Set(ReplaysHeader, bad)
		if _, err := ReplaysOf(h); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), ReplaysHeader) {
			t.Errorf("ReplaysOf(%q): err = %v", bad, err)
		}
	}
}

// TestRecordKeepsTraceContext: the trace context goes into the W3C
// headers and comes back, read in any case; the JSON form names the
// trace; a record without one has none.
func TestRecordKeepsTraceContext(t *testing.T) {
	t.Parallel()
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := Record{Event: []byte("{}"), WaybillID: "W1", Reason: ReasonRejected, OriginalSubject: "logistics.trace.W1", OriginalSeq: 7,
		FailedAt: time.Unix(1, 0).UTC(), TraceParent: "00-" + id + "-00f067aa0ba902b7-01", TraceState: "vendor=x"}
	m := r.Msg()
	if m.Header.Get("traceparent") != r.TraceParent || m.Header.Get("tracestate") != r.TraceState {
		t.Fatalf("headers %v lack the trace context", m.Header)
	}
	m.Header["Traceparent"] = m.Header["traceparent"] // a tool that rewrote the case
	delete(m.Header, "traceparent")
	back, err := fromParts(m.Subject, 1, m.Header, m.Data)
	if err != nil || back.TraceParent != r.TraceParent || back.TraceState != r.TraceState || back.TraceID() != id || back.JSON().TraceID != id {
		t.Fatalf("read back %+v (%v): want the trace context of %+v", back, err, r)
	}
	r.TraceParent, r.TraceState = "", ""
	if m := r.Msg(); m.Header.Get("traceparent") != "" || r.TraceID() != "" || r.JSON().TraceID != "" {
		t.Errorf("a record without trace context: headers %v, trace id %q", m.Header, r.TraceID())
	}
}
