package deadletter

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// RecordJSON is a dead letter as `pathupdate deadletter list --json`
// prints it, one object a line (docs/contract.md). Times are RFC 3339 in UTC;
// absent times are left out.
type RecordJSON struct {
	Seq             uint64     `json:"seq"`
	WaybillID       string     `json:"waybill_id"` // "" when the waybill was not a valid id
	Reason          string     `json:"reason"`
	ErrCode         int        `json:"errcode"`
	ErrMsg          string     `json:"errmsg"`
	Attempts        int        `json:"attempts"`
	OriginalSubject string     `json:"original_subject"`
	OriginalSeq     uint64     `json:"original_seq"`
	FirstAttempt    *time.Time `json:"first_attempt,omitempty"`
	LastAttempt     *time.Time `json:"last_attempt,omitempty"`
	FailedAt        time.Time  `json:"failed_at"`
	Replays         int        `json:"replays"`
	// Event is the original message: the JSON value itself when it is
	// JSON, else the bytes as a string (invalid UTF-8 as U+FFFD).
	Event json.RawMessage `json:"event"`
	// EventError says why the event is not a valid event; absent when it
	// is one.
	EventError string `json:"event_error,omitempty"`
	// TruncatedFrom is the original's size in bytes when Event is only its
	// beginning (Record.TruncatedFrom); absent when Event is whole.
	TruncatedFrom int `json:"truncated_from,omitempty"`
	// TraceID is the trace of the failed delivery (from Record.TraceParent);
	// absent without one.
	TraceID string `json:"trace_id,omitempty"`
}

// JSON returns r in the form RecordJSON describes.
func (r Record) JSON() RecordJSON {
	out := RecordJSON{
		Seq: r.Seq, WaybillID: r.WaybillID, Reason: r.Reason, ErrCode: r.ErrCode, ErrMsg: r.ErrMsg,
		Attempts: r.Attempts, OriginalSubject: r.OriginalSubject, OriginalSeq: r.OriginalSeq,
		FirstAttempt: timeOrNil(r.FirstAttempt), LastAttempt: timeOrNil(r.LastAttempt),
		FailedAt: r.FailedAt.UTC(), Replays: r.Replays, Event: eventJSON(r.Event),
		TruncatedFrom: r.TruncatedFrom, TraceID: r.TraceID(),
	}
	if _, err := pathupdate.DecodeEvent(r.Event); err != nil {
		out.EventError = err.Error() // never holds the token
	}
	return out
}

// TraceID is the trace id of r.TraceParent, "" without a valid one.
func (r Record) TraceID() string {
	return pathupdate.TraceIDOf(r.traceContext(context.Background()))
}

// traceContext is ctx carrying r's trace context as a remote parent.
func (r Record) traceContext(ctx context.Context) context.Context {
	if r.TraceParent == "" {
		return ctx
	}
	h := nats.Header{}
	h.Set(pathupdate.TraceParentHeader, r.TraceParent)
	if r.TraceState != "" {
		h.Set(pathupdate.TraceStateHeader, r.TraceState)
	}
	return pathupdate.ExtractTrace(ctx, h)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// eventJSON keeps a JSON event as it is, so a script sees the event's own
// fields; anything else becomes a JSON string.
func eventJSON(b []byte) json.RawMessage {
	if len(b) > 0 && utf8.Valid(b) && json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b)) // a string always marshals; invalid UTF-8 becomes U+FFFD
	return s
}
