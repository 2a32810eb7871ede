package pathupdate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pathupdate/pathupdate/internal/jsonenc"
)

// ActionType is the kind of trace step, as WeChat numbers it.
type ActionType int

// The action types logistics.updatePath accepts (and nothing else).
const (
	ActionPickedUp        ActionType = 100001 // 揽件阶段-揽件成功
	ActionPickUpFailed    ActionType = 100002 // 揽件阶段-揽件失败
	ActionCourierAssigned ActionType = 100003 // 揽件阶段-分配业务员
	ActionInTransit       ActionType = 200001 // 运输阶段-更新运输轨迹
	ActionOutForDelivery  ActionType = 300002 // 派送阶段-开始派送
	ActionSigned          ActionType = 300003 // 派送阶段-签收成功
	ActionSignFailed      ActionType = 300004 // 派送阶段-签收失败
	ActionOrderCancelled  ActionType = 400001 // 异常阶段-订单取消
	ActionOrderHeldUp     ActionType = 400002 // 异常阶段-订单滞留
)

// actionTypeRule ends the message about a wrong action_type: it lists what
// is accepted, so a producer need not look it up.
const actionTypeRule = "is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"

// Valid reports whether t is one of the nine action types WeChat accepts.
func (t ActionType) Valid() bool { return t.name() != "" }

// String returns the English name of t ("picked_up", "in_transit", ...),
// or "action_type(N)" for a number WeChat does not define.
func (t ActionType) String() string {
	if n := t.name(); n != "" {
		return n
	}
	return fmt.Sprintf("action_type(%d)", int64(t))
}

func (t ActionType) name() string {
	switch t {
	case ActionPickedUp:
		return "picked_up"
	case ActionPickUpFailed:
		return "pick_up_failed"
	case ActionCourierAssigned:
		return "courier_assigned"
	case ActionInTransit:
		return "in_transit"
	case ActionOutForDelivery:
		return "out_for_delivery"
	case ActionSigned:
		return "signed"
	case ActionSignFailed:
		return "sign_failed"
	case ActionOrderCancelled:
		return "order_cancelled"
	case ActionOrderHeldUp:
		return "order_held_up"
	}
	return ""
}

// Limits of the wire format (docs/contract.md "The event"). Characters are
// Unicode code points (runes), not bytes.
const (
	MaxTokenLen     = 256  // characters of token
	MaxWaybillIDLen = 64   // characters of waybill_id, each of A-Z a-z 0-9 - _
	MaxActionMsgLen = 1024 // characters (runes) of action_msg; WeChat documents none, this is ours
)

// ErrInvalidEvent is matched (errors.Is) by every error that says an event
// breaks the wire-format rules. Such an event will never be delivered; a
// worker dead-letters it with reason invalid_event.
var ErrInvalidEvent = errors.New("invalid event")

// InvalidEventError is the one error type DecodeEvent and Validate return.
// It matches ErrInvalidEvent with errors.Is. Its text never contains the
// token (a credential-like value from WeChat): only the token's length.
//
// An event that breaks several rules gets one error naming them all, the
// first in Field and Rule and the others, in wire order, in More, so that
// a producer fixes an event in one round instead of one problem a try.
type InvalidEventError struct {
	// Field is the snake_case name of the offending field ("token",
	// "waybill_id", "action_time", "action_type", "action_msg") whichever
	// spelling the input used, or "" when the document as a whole is wrong.
	Field string
	// Rule is the English rest of the sentence, e.g. "is missing" or
	// "300001 is not one of 100001, ...". For people, not for branching.
	Rule string
	// More holds the problems of further fields, in wire order; each has
	// Field and Rule set and no More of its own. Empty when only one field
	// is wrong, and always when the document as a whole is.
	More []InvalidEventError
}

func (e *InvalidEventError) Error() string {
	var b strings.Builder
	b.WriteString("invalid event: ")
	e.writeProblem(&b)
	for i := range e.More {
		b.WriteString("; ")
		e.More[i].writeProblem(&b)
	}
	return b.String()
}

func (e *InvalidEventError) writeProblem(b *strings.Builder) {
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteByte(' ')
	}
	b.WriteString(e.Rule)
}

// Problems returns every problem of the event, the first one (Field and
// Rule) included, each without More.
func (e *InvalidEventError) Problems() []InvalidEventError {
	return append([]InvalidEventError{{Field: e.Field, Rule: e.Rule}}, e.More...)
}

// Unwrap makes errors.Is(err, ErrInvalidEvent) true.
func (e *InvalidEventError) Unwrap() error { return ErrInvalidEvent }

func invalid(field, format string, args ...any) *InvalidEventError {
	return &InvalidEventError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// joinProblems makes one error of the problems of several fields (nil
// entries skipped), or returns nil when there are none.
func joinProblems(problems []*InvalidEventError) error {
	var first *InvalidEventError
	for _, p := range problems {
		switch {
		case p == nil:
		case first == nil:
			first = &InvalidEventError{Field: p.Field, Rule: p.Rule}
		default:
			first.More = append(first.More, InvalidEventError{Field: p.Field, Rule: p.Rule})
		}
	}
	if first == nil {
		return nil
	}
	return first
}

// Event is one trace step of one waybill: exactly the HTTPS request body of
// logistics.updatePath. Build one in Go and call Validate, or get one from
// DecodeEvent (which validates).
type Event struct {
	Token      string     `json:"token"`
	WaybillID  string     `json:"waybill_id"`
	ActionTime int64      `json:"action_time"`
	ActionType ActionType `json:"action_type"`
	ActionMsg  string     `json:"action_msg"`
}

// Field names as errors report them (always the snake_case spelling).
const (
	fieldToken      = "token"
	fieldWaybillID  = "waybill_id"
	fieldActionTime = "action_time"
	fieldActionType = "action_type"
	fieldActionMsg  = "action_msg"
)

// Validate checks the wire-format rules of docs/contract.md and returns nil
// or one *InvalidEventError naming every field (in wire order) that breaks
// one: token 1..MaxTokenLen characters of valid UTF-8; waybill_id
// 1..MaxWaybillIDLen characters of A-Z a-z 0-9 - _; action_time > 0 (Unix
// seconds); action_type one of the nine constants; action_msg
// 1..MaxActionMsgLen characters of valid UTF-8.
func (e Event) Validate() error {
	var problems [slotCount]*InvalidEventError
	for slot := range slotCount {
		problems[slot] = e.check(slot)
	}
	return joinProblems(problems[:])
}

func (e Event) check(slot int) *InvalidEventError {
	switch slot {
	case slotToken:
		return checkText(fieldToken, e.Token, MaxTokenLen)
	case slotWaybillID:
		return checkWaybillID(e.WaybillID)
	case slotActionTime:
		if e.ActionTime <= 0 {
			return invalid(fieldActionTime, "%d is not positive (Unix seconds, > 0)", e.ActionTime)
		}
	case slotActionType:
		if !e.ActionType.Valid() {
			return invalid(fieldActionType, "%d %s", int64(e.ActionType), actionTypeRule)
		}
	case slotActionMsg:
		return checkText(fieldActionMsg, e.ActionMsg, MaxActionMsgLen)
	}
	return nil
}

// checkText says only lengths, never the value: for the token that is the
// point (it is a credential), for action_msg it keeps errors short.
func checkText(field, s string, max int) *InvalidEventError {
	if s == "" {
		return invalid(field, "is empty")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8 (%d bytes)", len(s))
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "is %d characters long, more than %d", n, max)
	}
	return nil
}

// ValidWaybillID reports whether s is a valid waybill_id: 1..MaxWaybillIDLen
// characters of A-Z a-z 0-9 - _ (it becomes a NATS subject token).
func ValidWaybillID(s string) bool { return checkWaybillID(s) == nil }

// checkWaybillID: the id becomes a NATS subject token, hence the alphabet.
func checkWaybillID(s string) *InvalidEventError {
	if s == "" {
		return invalid(fieldWaybillID, "is empty")
	}
	if n := utf8.RuneCountInString(s); n > MaxWaybillIDLen {
		return invalid(fieldWaybillID, "is %d characters long, more than %d", n, MaxWaybillIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return invalid(fieldWaybillID, "%q has a character outside A-Z a-z 0-9 - _", s)
		}
	}
	return nil
}

// Encode returns the canonical HTTPS body of logistics.updatePath: one JSON
// object, snake_case, fields in the order token, waybill_id, action_time,
// action_type, action_msg, no whitespace. Strings are escaped as
// encoding/json does: <, > and & become \u003c \u003e \u0026, U+2028 and
// U+2029 are escaped, invalid UTF-8 becomes U+FFFD (a valid event has
// none). json.Marshal(e) gives the same bytes. DecodeEvent(e.Encode())
// returns e for every valid e.
func (e Event) Encode() []byte {
	// Written by hand, not with json.Marshal: every event is encoded for
	// its call, and reflection was a twentieth of the worker's CPU per
	// event. TestEncodeRoundTrip and FuzzEncode hold it to json.Marshal.
	b := make([]byte, 0, 96+len(e.Token)+len(e.WaybillID)+len(e.ActionMsg))
	b = append(b, `{"token":`...)
	b = jsonenc.AppendString(b, e.Token)
	b = append(b, `,"waybill_id":`...)
	b = jsonenc.AppendString(b, e.WaybillID)
	b = append(b, `,"action_time":`...)
	b = strconv.AppendInt(b, e.ActionTime, 10)
	b = append(b, `,"action_type":`...)
	b = strconv.AppendInt(b, int64(e.ActionType), 10)
	b = append(b, `,"action_msg":`...)
	b = jsonenc.AppendString(b, e.ActionMsg)
	return append(b, '}')
}
