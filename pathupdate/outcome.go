package pathupdate

import "fmt"

// Kind is what a worker must do about one answer of the API. The mapping
// from errcodes and transport failures to a Kind lives in one place
// (Classify and the client); what a worker then does with each Kind lives in
// package retry.
type Kind int

const (
	// Delivered: WeChat took the event (errcode 0 or no errcode).
	Delivered Kind = iota + 1
	// Rejected: WeChat refused this event and will refuse it again
	// (40199 waybill not found, 9300507 incorrect token, 47001 data format,
	// 44002 empty body, and any errcode we do not know).
	Rejected
	// Transient: a failure that may pass (-1, HTTP 5xx, timeouts, connection
	// errors, an answer that is not JSON).
	Transient
	// TokenInvalid: the access_token was refused (40001, 40014, 42001, 41001)
	// even after the client refetched it and retried once.
	TokenInvalid
	// ConfigBroken: the app credentials or the account setup are wrong
	// (40013, 40125, 40164, 48001). Nothing gets through until a human acts.
	ConfigBroken
	// Throttled: a rate or quota limit (45011 minute quota, 45009 daily quota).
	Throttled
	// Unavailable: the way to the API is not there for now, and no event's
	// doing: WeChat Cloud Hosting's open-interface service starting or
	// initialising (41001 right after a start, 85113), its gateway's 502
	// and link errors (85112, error_type). Unlike Transient it never
	// spends an event's budget (openinterface.go).
	Unavailable
)

func (k Kind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Rejected:
		return "rejected"
	case Transient:
		return "transient"
	case TokenInvalid:
		return "token_invalid"
	case ConfigBroken:
		return "config_broken"
	case Throttled:
		return "throttled"
	case Unavailable:
		return "unavailable"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// EventSpecific reports whether the outcome is about this event alone, as
// opposed to a condition (outage, credentials, quota) every event would meet.
func (k Kind) EventSpecific() bool { return k == Rejected || k == Delivered }

// WeChat errcodes the project knows by name.
const (
	ErrcodeOK                = 0
	ErrcodeSystemError       = -1
	ErrcodeInvalidCredential = 40001 // access_token invalid or not the latest
	ErrcodeInvalidAppID      = 40013
	ErrcodeInvalidToken      = 40014 // access_token invalid
	ErrcodeInvalidSecret     = 40125
	ErrcodeIPNotWhitelisted  = 40164
	ErrcodeSecretFrozen      = 40243 // an administrator froze the AppSecret
	ErrcodeWaybillNotFound   = 40199
	ErrcodeMissingToken      = 41001 // access_token missing
	ErrcodeTokenExpired      = 42001
	ErrcodeEmptyBody         = 44002
	ErrcodeDailyQuota        = 45009
	ErrcodeMinuteQuota       = 45011
	ErrcodeDataFormat        = 47001
	ErrcodeAPIUnauthorized   = 48001
	ErrcodeIncorrectToken    = 9300507 // the event's token does not match the waybill
)

// Classify maps an errcode of an HTTP-200 answer to a Kind. Unknown codes
// are Rejected: the event is set aside where an operator sees it rather
// than retried forever (the operator can replay it).
func Classify(errcode int) Kind {
	switch errcode {
	case ErrcodeOK:
		return Delivered
	case ErrcodeSystemError:
		return Transient
	case ErrcodeInvalidCredential, ErrcodeInvalidToken, ErrcodeTokenExpired, ErrcodeMissingToken:
		return TokenInvalid
	case ErrcodeInvalidAppID, ErrcodeInvalidSecret, ErrcodeIPNotWhitelisted, ErrcodeAPIUnauthorized:
		return ConfigBroken
	case ErrcodeMinuteQuota, ErrcodeDailyQuota:
		return Throttled
	}
	return Rejected
}

// Outcome is the result of one UpdatePath call, classified. ErrCode and
// ErrMsg are WeChat's words, kept for logs, metrics and dead letters; Err is
// the transport error (already scrubbed of the access_token) when there was
// no usable answer.
type Outcome struct {
	Kind       Kind
	ErrCode    int
	ErrMsg     string
	HTTPStatus int   // 0 when no HTTP answer arrived
	Err        error // transport or decoding failure; nil when WeChat answered
}

// Answered reports whether WeChat, or a gateway in front of it, answered
// the call at all (an HTTP status arrived). A call that got no answer —
// connection refused, DNS, TLS, a timeout, an access_token that could not
// be had — says nothing about the event: it is never the event's own
// failure.
func (o Outcome) Answered() bool { return o.HTTPStatus != 0 }

func (o Outcome) String() string {
	if o.Err != nil {
		return fmt.Sprintf("%s: %v", o.Kind, o.Err)
	}
	if o.HTTPStatus != 0 && o.HTTPStatus != 200 {
		return fmt.Sprintf("%s: HTTP %d", o.Kind, o.HTTPStatus)
	}
	return fmt.Sprintf("%s: errcode %d %s", o.Kind, o.ErrCode, o.ErrMsg)
}
