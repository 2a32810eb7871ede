package metrics

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// Label values that are not an errcode number. Every label value this
// package writes is one of these, a known errcode, or a fixed word below:
// an unbounded value (waybill id, errmsg, error text) would make a new
// series per event.
const (
	ErrcodeOther     = "other"       // an errcode the project does not know by number
	ErrcodeHTTP4xx   = "http_4xx"    // a non-200 answer 400-499 (from a gateway: WeChat answers 200)
	ErrcodeHTTP5xx   = "http_5xx"    // a 500-599 answer
	ErrcodeHTTPOther = "http_other"  // any other non-200 status
	ErrcodeTimeout   = "timeout"     // no answer in time
	ErrcodeCanceled  = "canceled"    // the worker cancelled the call (shutdown)
	ErrcodeTransport = "transport"   // connection failure or unreadable answer without a status
	ErrcodeBadAnswer = "bad_answer"  // HTTP 200 whose body is not WeChat's JSON
	ErrcodeTokenFail = "token_fetch" // no access_token could be had; the call was not made

	ReasonOther = "other" // a dead-letter reason this package does not know

	ResultOK    = "ok"    // token fetch succeeded
	ResultError = "error" // token fetch failed with something other than a *pathupdate.TokenError

	SourceOther = "other" // a token source name other than the Source* constants
)

// KnownErrcodes lists the errcodes that appear by number in the errcode
// label: those the project knows by name (pathupdate.Errcode*).
func KnownErrcodes() []int {
	return []int{
		pathupdate.ErrcodeOK, pathupdate.ErrcodeSystemError,
		pathupdate.ErrcodeInvalidCredential, pathupdate.ErrcodeInvalidAppID,
		pathupdate.ErrcodeInvalidToken, pathupdate.ErrcodeInvalidSecret,
		pathupdate.ErrcodeIPNotWhitelisted, pathupdate.ErrcodeWaybillNotFound,
		pathupdate.ErrcodeMissingToken, pathupdate.ErrcodeTokenExpired,
		pathupdate.ErrcodeEmptyBody, pathupdate.ErrcodeDailyQuota,
		pathupdate.ErrcodeMinuteQuota, pathupdate.ErrcodeDataFormat,
		pathupdate.ErrcodeAPIUnauthorized, pathupdate.ErrcodeIncorrectToken,
		pathupdate.ErrcodeNotAuthorized, pathupdate.ErrcodePathNotWhitelisted,
		pathupdate.ErrcodeCloudbaseSecretAbsent, pathupdate.ErrcodeCloudbaseTokenPending,
	}
}

// ErrcodeLabel is the errcode label value of an outcome: a failure without
// a usable WeChat answer by what went wrong, an answer by its errcode when
// the project knows it, ErrcodeOther otherwise. It is bounded: at most
// len(KnownErrcodes())+9 values.
func ErrcodeLabel(o pathupdate.Outcome) string {
	s := o.HTTPStatus
	switch {
	case s >= 500 && s <= 599:
		return ErrcodeHTTP5xx
	case s >= 400 && s <= 499:
		return ErrcodeHTTP4xx
	case s != 0 && s != 200:
		return ErrcodeHTTPOther
	case o.Err != nil:
		return errLabel(o)
	}
	if slices.Contains(KnownErrcodes(), o.ErrCode) {
		return strconv.Itoa(o.ErrCode)
	}
	return ErrcodeOther
}

func errLabel(o pathupdate.Outcome) string {
	var te *pathupdate.TokenError
	var ne net.Error
	switch {
	case errors.As(o.Err, &te):
		return ErrcodeTokenFail
	case errors.Is(o.Err, context.Canceled):
		return ErrcodeCanceled
	case errors.Is(o.Err, context.DeadlineExceeded), errors.As(o.Err, &ne) && ne.Timeout():
		return ErrcodeTimeout
	case o.HTTPStatus == 200:
		return ErrcodeBadAnswer
	}
	return ErrcodeTransport
}

// kindLabel is the kind label value: the Kind's name, "unknown" for a
// Kind this package was not built with.
func kindLabel(k pathupdate.Kind) string {
	switch k {
	case pathupdate.Delivered, pathupdate.Rejected, pathupdate.Transient,
		pathupdate.TokenInvalid, pathupdate.ConfigBroken, pathupdate.Throttled, pathupdate.Unavailable:
		return k.String()
	}
	return "unknown"
}

// Reasons are the dead-letter reasons with their own label value.
func Reasons() []string {
	return deadletter.Reasons()
}

func reasonLabel(r string) string {
	if slices.Contains(Reasons(), r) {
		return r
	}
	return ReasonOther
}

// Token source names for TokenFetched, as the CLI's --token-source spells
// them.
const (
	SourceStable  = "stable"
	SourceClassic = "classic"
	SourceFile    = "file"
	SourceStatic  = "static"
)

func sourceLabel(s string) string {
	switch s {
	case SourceStable, SourceClassic, SourceFile, SourceStatic:
		return s
	}
	return SourceOther
}

// tokenResult is the result label of a token fetch: ok, the failure's
// Kind name for a *pathupdate.TokenError, or ResultError.
func tokenResult(err error) string {
	if err == nil {
		return ResultOK
	}
	var te *pathupdate.TokenError
	if errors.As(err, &te) {
		return kindLabel(te.Kind())
	}
	return ResultError
}

// Breaker state gauge values. They differ from retry.BreakerState's own
// numbers on purpose: ordered by severity, so a graph reads upward and
// "max > 1" means open somewhere.
const (
	BreakerClosedValue   = 0
	BreakerHalfOpenValue = 1
	BreakerOpenValue     = 2
)

func breakerValue(s retry.BreakerState) float64 {
	switch s {
	case retry.HalfOpen:
		return BreakerHalfOpenValue
	case retry.Open:
		return BreakerOpenValue
	}
	return BreakerClosedValue
}
