package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pathupdate/pathupdate/internal/jsonenc"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// Stream and subjects of the history.
const (
	Stream        = "LOGISTICS_HISTORY"
	SubjectPrefix = "logistics.history."
)

// Subject is where waybillID's history records are stored.
func Subject(waybillID string) string { return SubjectPrefix + waybillID }

// State is what became of an event at one step of its timeline.
type State string

// States, as `pathupdate trace --json` prints them.
const (
	Waiting      State = "waiting"       // in the trace stream, not yet tried or not yet settled
	Retrying     State = "retrying"      // tried and failed; the worker tries again at NextAttempt
	Delivered    State = "delivered"     // WeChat took it
	DeadLettered State = "dead_lettered" // set aside in the dead-letter stream
	Replayed     State = "replayed"      // an operator republished its dead letter
	Purged       State = "purged"        // an operator removed its dead letter
)

// Record is one step of one event's history. Times are UTC.
type Record struct {
	State     State  `json:"state"`
	WaybillID string `json:"waybill_id"`
	// Seq is the event's sequence in the trace stream (for a replay: the
	// sequence of the copy it published).
	Seq        uint64 `json:"seq,omitempty"`
	ActionType int    `json:"action_type,omitempty"`
	ActionTime int64  `json:"action_time,omitempty"`
	ActionMsg  string `json:"action_msg,omitempty"`
	// TokenTail is the last four characters of the event's token: enough
	// to tell two tokens apart, not enough to use one.
	TokenTail string `json:"token_tail,omitempty"`
	// Outcome is the kind of WeChat's last answer (pathupdate.Kind's text).
	Outcome  string `json:"outcome,omitempty"`
	ErrCode  int    `json:"errcode"`
	ErrMsg   string `json:"errmsg,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	// Reason is the dead-letter reason of a DeadLettered record.
	Reason string `json:"reason,omitempty"`
	// FirstAttempt is when the event was first tried; At is when this
	// step happened (settlement, retry decision, replay, purge).
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	At           time.Time `json:"at"`
	// NextAttempt is when a Retrying event is tried again.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LatencyMS is, for Delivered, the time from JetStream storing the
	// event to WeChat taking it.
	LatencyMS int64 `json:"latency_ms,omitempty"`
	// Worker is the member id of the worker that settled or tried it, or
	// "operator" for a replay or purge.
	Worker string `json:"worker,omitempty"`
	// DeadLetterSeq is the dead letter's sequence in LOGISTICS_DEADLETTER
	// (DeadLettered, Replayed, Purged).
	DeadLetterSeq uint64 `json:"dead_letter_seq,omitempty"`
	// ReplayOf is, for Replayed, the trace sequence of the event whose dead
	// letter was replayed: it links the copy to the original.
	ReplayOf uint64 `json:"replay_of,omitempty"`
}

// Maximum sizes kept of free text.
const (
	maxActionMsg = 1024
	maxErrMsg    = 512
)

// ErrInvalidRecord says a Record cannot be stored.
var ErrInvalidRecord = errors.New("history: invalid record")

// Validate reports what makes r unstorable.
func (r Record) Validate() error {
	switch {
	case !pathupdate.ValidWaybillID(r.WaybillID):
		return fmt.Errorf("%w: waybill id %q", ErrInvalidRecord, r.WaybillID)
	case r.State == "":
		return fmt.Errorf("%w: no state", ErrInvalidRecord)
	case r.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidRecord)
	}
	return nil
}

// TokenTail returns the last four characters of token (all of a shorter
// one is never kept: fewer than eight characters give none).
func TokenTail(token string) string {
	// Every delivery records one, and tokens are ASCII: counting runes by
	// converting to []rune cost an allocation of the whole token each time.
	if ascii(token) {
		if len(token) < 8 {
			return ""
		}
		return token[len(token)-4:]
	}
	r := []rune(token)
	if len(r) < 8 {
		return ""
	}
	return string(r[len(r)-4:])
}

// ascii reports whether s has only ASCII bytes, where a byte is a rune.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FromEvent fills the event's fields of r from ev.
func (r Record) FromEvent(ev pathupdate.Event) Record {
	r.WaybillID = ev.WaybillID
	r.ActionType = int(ev.ActionType)
	r.ActionTime = ev.ActionTime
	r.ActionMsg = ev.ActionMsg
	r.TokenTail = TokenTail(ev.Token)
	return r
}

// encode is r's stored form: JSON as encoding/json would write it (the
// same field names and omissions, so decode reads it back), free text cut
// to size, times in UTC. Written by hand: a record is encoded for every
// delivery, and reflection cost a tenth of the pipeline's throughput.
func (r Record) encode() ([]byte, error) {
	// Room for the three times (RFC 3339 with nanoseconds) and the rest: a
	// record is encoded once, without growing.
	b := make([]byte, 0, 448+len(r.ActionMsg)+len(r.ErrMsg)+len(r.WaybillID)+len(r.Worker))
	b = append(b, `{"state":`...)
	b = jsonenc.AppendString(b, string(r.State))
	b = append(b, `,"waybill_id":`...)
	b = jsonenc.AppendString(b, r.WaybillID)
	b = appendUint(b, "seq", r.Seq)
	b = appendInt(b, "action_type", int64(r.ActionType))
	b = appendInt(b, "action_time", r.ActionTime)
	b = appendText(b, "action_msg", clip(r.ActionMsg, maxActionMsg))
	b = appendText(b, "token_tail", r.TokenTail)
	b = appendText(b, "outcome", r.Outcome)
	b = append(b, `,"errcode":`...)
	b = strconv.AppendInt(b, int64(r.ErrCode), 10)
	b = appendText(b, "errmsg", clip(r.ErrMsg, maxErrMsg))
	b = appendInt(b, "attempts", int64(r.Attempts))
	b = appendText(b, "reason", r.Reason)
	b = appendTime(b, "first_attempt", r.FirstAttempt, true)
	b = appendTime(b, "at", r.At, false)
	b = appendTime(b, "next_attempt", r.NextAttempt, true)
	b = appendInt(b, "latency_ms", r.LatencyMS)
	b = appendText(b, "worker", r.Worker)
	b = appendUint(b, "dead_letter_seq", r.DeadLetterSeq)
	b = appendUint(b, "replay_of", r.ReplayOf)
	return append(b, '}'), nil
}

// The append helpers write `,"name":value`, leaving out what encoding/json's
// omitempty or omitzero would.

func appendUint(b []byte, name string, v uint64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendUint(appendName(b, name), v, 10)
}

func appendInt(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(appendName(b, name), v, 10)
}

func appendText(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return jsonenc.AppendString(appendName(b, name), v)
}

func appendTime(b []byte, name string, t time.Time, omitZero bool) []byte {
	if omitZero && t.IsZero() {
		return b
	}
	b = append(appendName(b, name), '"')
	return append(t.UTC().AppendFormat(b, time.RFC3339Nano), '"')
}

func appendName(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func decode(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("history: record: %w", err)
	}
	return r, nil
}

// clip cuts s to at most n bytes at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
