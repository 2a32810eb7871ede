package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The open-interface service (开放接口服务) of WeChat Cloud Hosting. A
// container running in Cloud Hosting, with the service switched on in the
// console, calls WeChat's server APIs over plain http at
// http://api.weixin.qq.com with no access_token at all: a sidecar of the
// platform takes the call and WeChat's gateway authenticates it. No
// AppSecret in the service, no token to keep, no API IP whitelist (Cloud
// Hosting's outbound IP is dynamic, so a token fetch with the AppSecret
// usually fails there with 40164).
//
// A Client given NewNoTokenSource sends
// POST {APIBase}/cgi-bin/express/delivery/path/update without the
// access_token parameter and reads the service's own answers on top of
// updatePath's (docs/cloudhosting.md has the table, with where each comes
// from in WeChat's documentation):
//
//   - 41001 "access_token missing": the service is off, or not yet in
//     effect right after a start. Unavailable for OpenInterfaceGrace, then
//     ConfigBroken naming the console switch.
//   - HTTP 502 from the gateway: the path is not on the whitelist for some
//     APIs, or the gateway. Unavailable, then ConfigBroken likewise.
//   - 85107: the path is not on the service's whitelist. ConfigBroken.
//   - 85113 "cloudbase_token is not ready yet": the service is still
//     initialising (a first version). Unavailable.
//   - 85112 "cloudbase_secret not found" and the gateway's link errors
//     (error_type GatewayError, SafeLinkError): Unavailable.
//   - 48001 / 85105: the account lacks the API's permission. ConfigBroken.
//
// None of these is about the event, so none dead-letters one: Unavailable
// and ConfigBroken both keep the event, spending none of its budget, and
// the circuit breaker pauses delivery while they last. While the last
// answers were such failures, Client.Blocked says what to fix, for
// readiness checks.

// Errcodes of the open-interface service, beyond those in outcome.go.
const (
	ErrcodeNotAuthorized         = 85105 // not authorized: the account lacks the API's permission
	ErrcodePathNotWhitelisted    = 85107 // the URL is not on the service's whitelist
	ErrcodeCloudbaseSecretAbsent = 85112 // cloudbase_secret not found: a link failure
	ErrcodeCloudbaseTokenPending = 85113 // cloudbase_token is not ready yet: the service is initialising
)

// OpenInterfaceAPIBase is the API base a container in WeChat Cloud Hosting
// calls through the open-interface service: plain http, which the
// platform's sidecar can take (over https the call would reach WeChat
// itself without a token and get 41001).
const OpenInterfaceAPIBase = "http://api.weixin.qq.com"

// OpenInterfaceGrace is how long 41001 and HTTP 502 from the
// open-interface service count as Unavailable (the service coming into
// effect after a start) before they are ConfigBroken: measured from the
// first such answer since WeChat last answered an event.
const OpenInterfaceGrace = 2 * time.Minute

// ErrGatewayAnswer is wrapped by Outcome.Err when an HTTP 200 answer
// carries a gateway's error_type and no errcode (WeChat Cloud Hosting's
// GatewayError, SafeLinkError): something in front of WeChat speaking,
// not WeChat, so nothing was delivered.
var ErrGatewayAnswer = errors.New("answer is a gateway's error_type, not WeChat's")

// ErrQuotaNeedsToken is APIQuota's error on a client with no token source:
// WeChat offers getApiQuota to no cloud call, the open-interface service
// included, so the quota is not known there (the breaker still pauses on
// 45009 and 45011).
var ErrQuotaNeedsToken = errors.New("getApiQuota needs an access_token: it is not callable through WeChat Cloud Hosting's open-interface service")

// updatePathWhitelistEntry is what a team adds to the open-interface
// service's whitelist: the path below api.weixin.qq.com, without query.
const updatePathWhitelistEntry = updatePathPath

// noTokenSource is the token source of the open-interface service.
type noTokenSource struct{}

// NewNoTokenSource returns the TokenSource of a container in WeChat Cloud
// Hosting calling through the open-interface service: it never has a
// token, and a Client given it calls without one (see openinterface.go).
// Its Token returns "" and no error; Invalidate does nothing.
func NewNoTokenSource() TokenSource { return noTokenSource{} }

func (noTokenSource) Token(ctx context.Context) (Secret, error) { return "", nil }

func (noTokenSource) Invalidate(context.Context, Secret) {}

// callsWithoutToken reports whether ts is NewNoTokenSource's.
func callsWithoutToken(ts TokenSource) bool {
	_, ok := ts.(noTokenSource)
	return ok
}

// validateOpenInterface checks what calling without a token cannot go with.
func (c ClientConfig) validateOpenInterface(errs *FieldErrors) {
	if !callsWithoutToken(c.Tokens) {
		return
	}
	if c.Transport == TransportCloudCall {
		errs.Add("Transport", "%s needs an access_token: calling through Cloud Hosting's open-interface service (no token source, --token-source none) use %s, which calls logistics.updatePath directly",
			TransportCloudCall, TransportHTTPS)
	}
	if strings.HasPrefix(strings.ToLower(c.APIBase), "https://api.weixin.qq.com") {
		errs.Add("APIBase", "%q with no access_token: WeChat answers 41001 to every such call; in WeChat Cloud Hosting use %s (the open-interface service takes plain http)",
			c.APIBase, OpenInterfaceAPIBase)
	}
}

// useOpenInterface makes c read the open-interface service's answers.
func (c *Client) useOpenInterface() {
	oi := &openInterface{now: c.cfg.Now, grace: OpenInterfaceGrace}
	post := c.call
	c.call = func(ctx context.Context, tok Secret, body []byte) Outcome {
		return oi.note(post(ctx, tok, body))
	}
	c.oi = oi
}

// Blocked returns nil unless the open-interface service answered the last
// calls with a failure that is no event's (see openinterface.go) and
// WeChat has answered no event since; the error says what the failure is
// and what to fix. Always nil for a client with a token source. For
// readiness checks.
func (c *Client) Blocked() error {
	if c.oi == nil {
		return nil
	}
	return c.oi.blocked()
}

// openInterface classifies the open-interface service's answers and keeps
// the failure that blocks delivery now.
type openInterface struct {
	now   func() time.Time
	grace time.Duration

	mu      sync.Mutex
	since   time.Time // first failure since WeChat last answered an event; zero when none
	problem string    // what blocks delivery and its fix; "" when nothing does
}

// note classifies o, an answer to a call made without a token, and keeps
// the failure it shows.
func (oi *openInterface) note(o Outcome) Outcome {
	o.Kind = classifyOpenInterface(o)
	now := oi.now()
	oi.mu.Lock()
	defer oi.mu.Unlock()
	if o.Kind.EventSpecific() {
		oi.since, oi.problem = time.Time{}, ""
		return o
	}
	fix := openInterfaceFix(o)
	if fix == "" {
		return o // a failure of another kind (-1, a timeout): not the service's setup
	}
	if oi.since.IsZero() {
		oi.since = now
	}
	if o.Kind == Unavailable && escalates(o) && now.Sub(oi.since) >= oi.grace {
		o.Kind = ConfigBroken
	}
	oi.problem = fmt.Sprintf("the open-interface service answers %s: %s; delivery is paused until it takes the calls", answerName(o), fix)
	return o
}

func (oi *openInterface) blocked() error {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	if oi.problem == "" {
		return nil
	}
	return errors.New(oi.problem)
}

// classifyOpenInterface is the Kind of an answer of the open-interface
// service; other answers keep the Kind the HTTPS path gave them.
func classifyOpenInterface(o Outcome) Kind {
	switch {
	case o.HTTPStatus == http.StatusBadGateway:
		return Unavailable
	case errors.Is(o.Err, ErrGatewayAnswer):
		return Unavailable
	case o.HTTPStatus != http.StatusOK || o.Err != nil:
		return o.Kind
	}
	switch o.ErrCode {
	case ErrcodeMissingToken, ErrcodeCloudbaseTokenPending, ErrcodeCloudbaseSecretAbsent:
		return Unavailable
	case ErrcodePathNotWhitelisted, ErrcodeAPIUnauthorized, ErrcodeNotAuthorized:
		return ConfigBroken
	}
	return o.Kind
}

// escalates reports whether o is an answer that is Unavailable only for
// OpenInterfaceGrace: one that a start explains at first and a setting
// explains when it lasts.
func escalates(o Outcome) bool {
	return o.HTTPStatus == http.StatusBadGateway || o.HTTPStatus == http.StatusOK && o.ErrCode == ErrcodeMissingToken && o.Err == nil
}

// answerName names an answer in a readiness message.
func answerName(o Outcome) string {
	switch {
	case o.HTTPStatus != http.StatusOK:
		return fmt.Sprintf("HTTP %d", o.HTTPStatus)
	case o.Err != nil:
		return o.Err.Error()
	}
	return fmt.Sprintf("errcode %d %s", o.ErrCode, o.ErrMsg)
}

// openInterfaceFix says, for a person, what to do about an answer of the
// open-interface service that is no event's; "" for any other answer.
func openInterfaceFix(o Outcome) string {
	switch {
	case o.HTTPStatus == http.StatusBadGateway:
		return "WeChat's gateway refuses the call: check that " + updatePathWhitelistEntry +
			" is on the open-interface service's whitelist (Cloud Hosting console: 云调用 > 微信令牌权限配置); if it is and this lasts, switch the service off and on and release a new version"
	case errors.Is(o.Err, ErrGatewayAnswer):
		return "a link failure of the open-interface service, which usually passes; if it lasts, open a ticket with WeChat Cloud Hosting giving the environment id, AppID, time and request id"
	case o.HTTPStatus != http.StatusOK || o.Err != nil:
		return ""
	}
	switch o.ErrCode {
	case ErrcodeMissingToken:
		return "the open-interface service is not in effect for this version: normal for the first moments after a start; if it lasts, switch on 开放接口服务 in the Cloud Hosting console (云调用) and release a new version (one built before the switch does not use it), and keep --api-base " + OpenInterfaceAPIBase
	case ErrcodePathNotWhitelisted:
		return "add " + updatePathWhitelistEntry + " to the open-interface service's whitelist (Cloud Hosting console: 云调用 > 微信令牌权限配置, one path a line, then save)"
	case ErrcodeCloudbaseTokenPending:
		return "the open-interface service is still initialising (usual for a first version): it passes within minutes; if it does not, open a ticket with WeChat Cloud Hosting"
	case ErrcodeCloudbaseSecretAbsent:
		return "a link failure of the open-interface service, which usually passes; if it lasts, open a ticket with WeChat Cloud Hosting giving the environment id, AppID, time and request id"
	case ErrcodeAPIUnauthorized, ErrcodeNotAuthorized:
		return "the account has no permission for logistics.updatePath: the environment must belong to the courier's mini program, which must hold the logistics API's permission in mp.weixin.qq.com"
	}
	return ""
}
