package deadletter

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Reasons an event is dead-lettered (docs/deadletters.md). They are the
// only set: package retry returns them, Record.Validate accepts exactly
// them, and filters and metrics labels list them from Reasons.
const (
	ReasonRejected         = "rejected"          // WeChat refused this event (40199, 9300507, ...)
	ReasonInvalidEvent     = "invalid_event"     // the message breaks the wire-format rules
	ReasonRetriesExhausted = "retries_exhausted" // it kept failing on its own past the retry budget
)

// Reasons lists every dead-letter reason, in the order they are documented.
func Reasons() []string {
	return []string{ReasonRejected, ReasonInvalidEvent, ReasonRetriesExhausted}
}

// knownReason reports whether r is one of Reasons.
func knownReason(r string) bool { return slices.Contains(Reasons(), r) }

// Headers of a dead-letter message. Times are RFC 3339 with nanoseconds,
// in UTC.
const (
	ReasonHeader          = "Pathupdate-Reason"
	ErrcodeHeader         = "Pathupdate-Errcode"
	ErrmsgHeader          = "Pathupdate-Errmsg"
	AttemptsHeader        = "Pathupdate-Attempts"
	OriginalSubjectHeader = "Pathupdate-Original-Subject"
	OriginalSeqHeader     = "Pathupdate-Original-Seq"
	FirstAttemptHeader    = "Pathupdate-First-Attempt"
	LastAttemptHeader     = "Pathupdate-Last-Attempt"
	FailedAtHeader        = "Pathupdate-Failed-At"
	// ReplaysHeader also travels on a replayed trace message, so that a
	// dead letter of a replayed event knows how often it was replayed.
	ReplaysHeader = "Pathupdate-Replays"
	// EventTruncatedHeader is present only on a dead letter whose payload
	// had to be cut to fit the server's max payload (an original published
	// at or near that size, which no valid event comes close to): its
	// value is the original's size in bytes.
	EventTruncatedHeader = "Pathupdate-Event-Truncated-From"
)

// InvalidWaybill is the last subject token of dead letters whose waybill
// is not a valid waybill id: logistics.deadletter.~invalid. "~" is outside
// the waybill alphabet (A-Z a-z 0-9 - _), so no waybill's dead letters can
// share the subject, yet it is a plain NATS subject token within the
// stream's logistics.deadletter.*. As Filter.Waybill it selects every dead
// letter without a valid waybill, wherever it is stored.
const InvalidWaybill = "~invalid"

// legacyInvalidWaybill is where versions before InvalidWaybill stored the
// dead letters of invalid ids, together with those of the valid waybill
// "_invalid": reading tells them apart by their original subject (see
// waybillOf).
const legacyInvalidWaybill = "_invalid"

// MaxErrMsgBytes caps the Pathupdate-Errmsg header.
const MaxErrMsgBytes = 512

// Caps of the other text headers, only ever reached by garbage.
const (
	maxReasonBytes  = 64
	maxSubjectBytes = 512
	// W3C: traceparent is 55 characters in version 00 (a later version
	// may add fields); tracestate is at most 32 members, about 512 bytes.
	maxTraceParentBytes = 128
	maxTraceStateBytes  = 1024
)

// ErrMalformed is matched (errors.Is) by every error FromMsg returns for a
// message that is not a well-formed dead-letter record.
var ErrMalformed = errors.New("malformed dead-letter record")

// Record is one dead letter.
type Record struct {
	Event []byte // the original message bytes, unchanged
	// WaybillID is the waybill, from the subject: "" when the subject's
	// last token is not a valid waybill id (InvalidWaybill, or a foreign
	// message's "$JS", "*", ...), and for an old dead letter of an invalid
	// id on logistics.deadletter._invalid.
	WaybillID       string
	Reason          string // ReasonRejected, ReasonInvalidEvent or ReasonRetriesExhausted
	ErrCode         int    // WeChat's errcode, 0 when there was none
	ErrMsg          string // WeChat's errmsg or the failure; stored single-line, at most MaxErrMsgBytes
	Attempts        int    // delivery attempts made
	OriginalSubject string // subject of the original in the trace stream
	OriginalSeq     uint64 // its sequence in the trace stream
	FirstAttempt    time.Time
	LastAttempt     time.Time
	FailedAt        time.Time // when it was dead-lettered
	Replays         int       // how often this event had been replayed before
	Seq             uint64    // sequence in the dead-letter stream; set when read back
	// TruncatedFrom is the original's size in bytes when Event holds only
	// its beginning (the whole would not fit the server's max payload
	// together with the headers; see Writer.Write); 0 when Event is whole.
	TruncatedFrom int
	// TraceParent and TraceState are the W3C trace context of the failed
	// delivery (headers pathupdate.TraceParentHeader and TraceStateHeader,
	// as on a trace message): a replay publishes the event in the same
	// trace. Empty when the event came without one and tracing was off.
	TraceParent string
	TraceState  string
}

// Validate reports what makes r unfit to write.
func (r Record) Validate() error {
	switch {
	case !knownReason(r.Reason):
		return fmt.Errorf("Record.Reason is %q: use %q, %q or %q", r.Reason, ReasonRejected, ReasonInvalidEvent, ReasonRetriesExhausted)
	case r.OriginalSeq == 0:
		return errors.New("Record.OriginalSeq is 0: set the original's stream sequence (the dead letter's id derives from it)")
	case r.OriginalSubject == "":
		return errors.New("Record.OriginalSubject is empty: set the original's subject")
	case r.Attempts < 0:
		return fmt.Errorf("Record.Attempts is %d: must not be negative", r.Attempts)
	case r.Replays < 0:
		return fmt.Errorf("Record.Replays is %d: must not be negative", r.Replays)
	case r.TruncatedFrom < 0 || r.TruncatedFrom > 0 && r.TruncatedFrom <= len(r.Event):
		return fmt.Errorf("Record.TruncatedFrom is %d with %d event bytes: leave it 0 unless Event was cut from a longer original", r.TruncatedFrom, len(r.Event))
	case r.FailedAt.IsZero():
		return errors.New("Record.FailedAt is zero: set when the event was dead-lettered")
	}
	return nil
}

// MsgID is the dead letter's Nats-Msg-Id: "dl-LOGISTICS_TRACE-<original
// seq>". Writing the same original twice (a worker crashed between the
// dead letter's PubAck and the original's Ack, and the original came back)
// is then a duplicate within the stream's window, not a second record.
func (r Record) MsgID() string {
	return "dl-" + pathupdate.TraceStream + "-" + strconv.FormatUint(r.OriginalSeq, 10)
}

// Subject is where r is stored: logistics.deadletter.<waybill>, or
// logistics.deadletter.~invalid (InvalidWaybill) when the waybill is not a
// valid id.
func (r Record) Subject() string {
	return pathupdate.DeadLetterSubject(subjectToken(r.WaybillID))
}

// Msg is r as a message for the dead-letter stream: payload = r.Event,
// metadata in headers, Nats-Msg-Id = r.MsgID(). Text headers are made
// single-line; ErrMsg is cut to MaxErrMsgBytes.
func (r Record) Msg() *nats.Msg {
	h := r.headers()
	h.Set(jetstream.MsgIDHeader, r.MsgID())
	return &nats.Msg{Subject: r.Subject(), Data: r.Event, Header: h}
}

func (r Record) headers() nats.Header {
	h := nats.Header{}
	setText := func(name, v string, limit int) {
		if v = singleLine(v, limit); v != "" {
			h.Set(name, v)
		}
	}
	setTime := func(name string, t time.Time) {
		if !t.IsZero() {
			h.Set(name, t.UTC().Format(time.RFC3339Nano))
		}
	}
	setText(ReasonHeader, r.Reason, maxReasonBytes)
	h.Set(ErrcodeHeader, strconv.Itoa(r.ErrCode))
	setText(ErrmsgHeader, r.ErrMsg, MaxErrMsgBytes)
	h.Set(AttemptsHeader, strconv.Itoa(r.Attempts))
	setText(OriginalSubjectHeader, r.OriginalSubject, maxSubjectBytes)
	h.Set(OriginalSeqHeader, strconv.FormatUint(r.OriginalSeq, 10))
	setTime(FirstAttemptHeader, r.FirstAttempt)
	setTime(LastAttemptHeader, r.LastAttempt)
	setTime(FailedAtHeader, r.FailedAt)
	h.Set(ReplaysHeader, strconv.Itoa(r.Replays))
	if r.TruncatedFrom > 0 {
		h.Set(EventTruncatedHeader, strconv.Itoa(r.TruncatedFrom))
	}
	setText(pathupdate.TraceParentHeader, r.TraceParent, maxTraceParentBytes)
	setText(pathupdate.TraceStateHeader, r.TraceState, maxTraceStateBytes)
	return h
}

// FromMsg reads a record back from a message of the dead-letter stream
// (from a consumer). Errors match ErrMalformed and name the bad header.
func FromMsg(m jetstream.Msg) (Record, error) {
	meta, err := m.Metadata()
	if err != nil {
		return Record{}, fmt.Errorf("%w: not a JetStream message: %w", ErrMalformed, err)
	}
	return fromParts(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data())
}

// FromRawMsg reads a record back from Stream.GetMsg or a direct get.
// Errors match ErrMalformed and name the bad header.
func FromRawMsg(m *jetstream.RawStreamMsg) (Record, error) {
	if m == nil {
		return Record{}, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	return fromParts(m.Subject, m.Sequence, m.Header, m.Data)
}

func fromParts(subject string, seq uint64, h nats.Header, data []byte) (Record, error) {
	if !strings.HasPrefix(subject, pathupdate.DeadLetterSubjectPrefix) {
		return Record{}, fmt.Errorf("%w: seq %d is on %q, not under %s", ErrMalformed, seq, subject, pathupdate.DeadLetterSubjectPrefix)
	}
	r, err := fromHeaders(h)
	if err != nil {
		return Record{}, fmt.Errorf("seq %d: %w", seq, err)
	}
	r.WaybillID = waybillOf(subject, r.OriginalSubject)
	r.Event, r.Seq = data, seq
	return r, nil
}

// fromHeaders parses the Pathupdate-* headers. Reason, Original-Subject,
// Original-Seq and Failed-At are required; the others default to zero.
// Reason is not checked against the known values so that a newer writer's
// reason still lists. Every bad header is reported, not just the first.
func fromHeaders(h nats.Header) (Record, error) {
	var r Record
	var errs []error
	// Text is normalised as Msg writes it, so a record read back and
	// written again carries the same headers.
	text := func(name string, limit int, required bool) string {
		v := singleLine(h.Get(name), limit)
		if v == "" && required {
			errs = append(errs, missing(name))
		}
		return v
	}
	integer := func(name string, nonNegative bool) int {
		v := h.Get(name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err == nil && nonNegative && n < 0 {
			err = errors.New("must not be negative")
		}
		if err != nil {
			errs = append(errs, malformed(name, v, err))
		}
		return n
	}
	stamp := func(name string, required bool) time.Time {
		v := h.Get(name)
		if v == "" {
			if required {
				errs = append(errs, missing(name))
			}
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err == nil && required && t.IsZero() {
			err = errors.New("must not be the zero time")
		}
		if err != nil {
			errs = append(errs, malformed(name, v, err))
		}
		return t.UTC()
	}

	r.Reason = text(ReasonHeader, maxReasonBytes, true)
	r.ErrCode = integer(ErrcodeHeader, false)
	r.ErrMsg = text(ErrmsgHeader, MaxErrMsgBytes, false)
	r.Attempts = integer(AttemptsHeader, true)
	r.OriginalSubject = text(OriginalSubjectHeader, maxSubjectBytes, true)
	if v := h.Get(OriginalSeqHeader); v == "" {
		errs = append(errs, missing(OriginalSeqHeader))
	} else {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err == nil && seq == 0 {
			err = errors.New("must be positive")
		}
		if err != nil {
			errs = append(errs, malformed(OriginalSeqHeader, v, err))
		}
		r.OriginalSeq = seq
	}
	r.FirstAttempt = stamp(FirstAttemptHeader, false)
	r.LastAttempt = stamp(LastAttemptHeader, false)
	r.FailedAt = stamp(FailedAtHeader, true)
	r.Replays = integer(ReplaysHeader, true)
	r.TruncatedFrom = integer(EventTruncatedHeader, true)
	// Trace context is never required, nor checked: a malformed one only
	// starts a new trace when replayed.
	trace := pathupdate.HeaderCarrier(h)
	r.TraceParent = singleLine(trace.Get(pathupdate.TraceParentHeader), maxTraceParentBytes)
	r.TraceState = singleLine(trace.Get(pathupdate.TraceStateHeader), maxTraceStateBytes)
	if len(errs) > 0 {
		return Record{}, errors.Join(errs...)
	}
	return r, nil
}

// ReplaysOf reads ReplaysHeader from a (replayed) trace message: 0 when
// absent.
func ReplaysOf(h nats.Header) (int, error) {
	v := h.Get(ReplaysHeader)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = errors.New("negative")
	}
	if err != nil {
		return 0, malformed(ReplaysHeader, v, err)
	}
	return n, nil
}

func missing(name string) error {
	return fmt.Errorf("%w: header %s is missing", ErrMalformed, name)
}

func malformed(name, value string, err error) error {
	return fmt.Errorf("%w: header %s %q: %w", ErrMalformed, name, singleLine(value, 64), err)
}

// subjectToken is waybill if it is a valid waybill id (the same rule as
// the event's waybill_id), else InvalidWaybill.
func subjectToken(waybill string) string {
	if !pathupdate.ValidWaybillID(waybill) {
		return InvalidWaybill
	}
	return waybill
}

// waybillOf is the waybill of a dead letter stored on subject whose
// original was on original: the subject's last token when it passes the
// waybill rule, else "". Whatever the subject, a token that fails the rule
// (a foreign message on logistics.deadletter.$JS, say) never becomes a
// waybill, so replay never publishes to logistics.trace.$JS. On the legacy
// logistics.deadletter._invalid the token is the waybill only when the
// original was that waybill's (logistics.trace._invalid); otherwise the
// record is an old dead letter of an invalid id.
func waybillOf(subject, original string) string {
	w := pathupdate.WaybillFromSubject(subject)
	switch {
	case !pathupdate.ValidWaybillID(w):
		return ""
	case w == legacyInvalidWaybill && pathupdate.WaybillFromSubject(original) != w:
		return ""
	}
	return w
}

// singleLine makes s safe and stable as a header value: valid UTF-8,
// control characters (line breaks included) as spaces, no blanks at either
// end (a reader would trim them), at most limit bytes, cut at a character
// boundary and marked with "…". singleLine(singleLine(s)) == singleLine(s).
func singleLine(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= limit {
		return s
	}
	const more = "…"
	cut := limit - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + more
}
