package pathupdate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The Cloud Call transport. Teams whose mini program lives on WeChat Cloud
// Base may call logistics.updatePath from a cloud function
// (cloud.openapi.logistics.updatePath, permission granted in the function's
// config.json) rather than over HTTPS. The worker reaches such a function
// through WeChat's HTTP API
//
//	POST {APIBase}/tcb/invokecloudfunction?access_token=AT&env=ENV&name=NAME
//
// with the event in the cloud-call spelling as the body; WeChat answers
// {errcode, errmsg, resp_data}, resp_data being the function's return value
// as a JSON string. The function in cloudfunctions/updatePath returns
// {errCode, errMsg} whether the openapi call succeeded or threw.
//
// An answer is classified in two layers (docs/cloudcall.md has the table):
// the invoke API's errcode first (classifyInvoke: its token errors make
// UpdatePath refetch and retry once, as on the HTTPS path), then, when that
// is 0, the function's errCode (classifyFunction, which is Classify plus the
// Cloud Base codes), so retries, dead letters and the breaker behave as
// they do over HTTPS.

// Values of ClientConfig.Transport.
const (
	TransportHTTPS     = "https"
	TransportCloudCall = "cloudcall"
)

// Time limits of the Cloud Call. A function triggered through the HTTP API
// is stopped after CloudFunctionTimeLimit (WeChat's documented limit); the
// invoke API, a cold start and the network come on top of that, so a
// Timeout below MinCloudCallTimeout would give up on calls that are still
// going to succeed (and every retry of them would deliver the event
// again). DefaultCallTimeout (10 s) leaves the function's 5 s and as much
// again for the rest.
const (
	CloudFunctionTimeLimit = 5 * time.Second
	MinCloudCallTimeout    = 6 * time.Second
)

// invokeCloudFunctionPath is tcb.invokeCloudFunction below the API base.
const invokeCloudFunctionPath = "/tcb/invokecloudfunction"

// Errcodes of the invoke API and of Cloud Base, beyond those in outcome.go.
// The negative ones are from Cloud Base's errcode list; they can come as the
// invoke API's errcode or, thrown by wx-server-sdk, as the function's.
const (
	ErrcodeInvokeSystemError     = -1000 // invoke API: system error (function error or timeout included)
	ErrcodeMissingParameter      = 40101 // invoke API: env or name missing
	ErrcodeCloudBaseNotEnabled   = 85088 // invoke API: Cloud Base not enabled for this app
	ErrcodeCloudSystemError      = -501001
	ErrcodeCloudTimeout          = -501002
	ErrcodeCloudRequestQuota     = -501003 // requests beyond the environment's quota
	ErrcodeCloudConcurrencyQuota = -501004 // concurrent requests beyond the environment's quota
	ErrcodeCloudEnvInvalid       = -501005 // environment information abnormal (unknown env)
	ErrcodeCloudResourceNotFound = -501009 // resource invalid or missing (unknown function)
	ErrcodeCloudFunctionCallFail = -504001
	ErrcodeCloudFunctionExecFail = -504002
	ErrcodeCloudNoAPIPermission  = -604101 // the function's config.json does not grant the API
	ErrcodeCloudOpenAPITimeout   = -604102
	ErrcodeCloudSDKNoPermission  = -401001 // wx-server-sdk: no permission to use the API
)

// ErrCloudFunctionResult is wrapped by Outcome.Err when the invoke API
// answered errcode 0 but resp_data is not the {errCode, errMsg} object the
// repo's cloud function returns (another function deployed under the name,
// or a function that crashed before returning). Such an Outcome is
// Transient: it is not the event's fault.
var ErrCloudFunctionResult = errors.New("cloud function result is not {errCode, errMsg}")

// ParseTransport returns the transport v names (TransportHTTPS for ""),
// or an error saying which values there are. Every reader of a transport
// setting uses it, so they all take the same values.
func ParseTransport(v string) (string, error) {
	switch v {
	case TransportHTTPS, "":
		return TransportHTTPS, nil
	case TransportCloudCall:
		return v, nil
	}
	return "", fmt.Errorf("%q: use %s or %s", v, TransportHTTPS, TransportCloudCall)
}

// validateTransport checks Transport and, for the Cloud Call, what it needs.
func (c ClientConfig) validateTransport(errs *FieldErrors) {
	t, err := ParseTransport(c.Transport)
	if err != nil {
		errs.Add("Transport", "%v", err)
		return
	}
	if t != TransportCloudCall {
		return
	}
	if c.CloudEnv == "" {
		errs.Add("CloudEnv", "empty: the %s transport needs the Cloud Base environment id", TransportCloudCall)
	}
	if c.CloudFunction == "" {
		errs.Add("CloudFunction", "empty: the %s transport needs the name of the deployed cloud function, e.g. updatePath", TransportCloudCall)
	}
	if c.Timeout > 0 && c.Timeout < MinCloudCallTimeout {
		errs.Add("Timeout", "%v is too short for the %s transport: HTTP-triggered functions may run %v; use at least %v, or 0 for the default %v",
			c.Timeout, TransportCloudCall, CloudFunctionTimeLimit, MinCloudCallTimeout, DefaultCallTimeout)
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout > 0 && c.HTTPClient.Timeout < MinCloudCallTimeout {
		errs.Add("HTTPClient", "Timeout %v is too short for the %s transport: use at least %v (HTTP-triggered functions may run %v)",
			c.HTTPClient.Timeout, TransportCloudCall, MinCloudCallTimeout, CloudFunctionTimeLimit)
	}
}

// useCloudCall switches c to the Cloud Call transport.
func (c *Client) useCloudCall() {
	c.url = c.cfg.APIBase + invokeCloudFunctionPath
	c.query = "&env=" + url.QueryEscape(c.cfg.CloudEnv) + "&name=" + url.QueryEscape(c.cfg.CloudFunction)
	c.encode = cloudCallBody
	c.call = c.invoke
}

// cloudCallBody is the function's input: the event in the cloud-call
// spelling, the argument cloud.openapi.logistics.updatePath takes.
func cloudCallBody(ev Event) []byte {
	b, err := json.Marshal(struct {
		Token      string     `json:"token"`
		WaybillID  string     `json:"waybillId"`
		ActionTime int64      `json:"actionTime"`
		ActionType ActionType `json:"actionType"`
		ActionMsg  string     `json:"actionMsg"`
	}{ev.Token, ev.WaybillID, ev.ActionTime, ev.ActionType, ev.ActionMsg})
	if err != nil { // strings and integers always marshal
		panic("pathupdate: cloudCallBody: " + err.Error())
	}
	return b
}

// invokeErrmsgPrefix marks an errmsg that is the invoke API's own, so that
// logs and dead letters tell it from the function's (which starts
// "openapi.logistics.updatePath:").
const invokeErrmsgPrefix = "tcb.invokeCloudFunction: "

// invoke is one call of the cloud function through the invoke API.
func (c *Client) invoke(ctx context.Context, tok Secret, body []byte) Outcome {
	raw, o, ok := c.roundTrip(ctx, tok, body)
	if !ok {
		return o
	}
	var a struct {
		ErrCode  *int    `json:"errcode"`
		ErrMsg   string  `json:"errmsg"`
		RespData *string `json:"resp_data"`
	}
	if err := decodeJSON(raw, &a); err != nil {
		return Outcome{Kind: Transient, HTTPStatus: http.StatusOK, Err: err}
	}
	if a.ErrCode != nil && *a.ErrCode != 0 {
		code := *a.ErrCode
		return Outcome{Kind: classifyInvoke(code), ErrCode: code, ErrMsg: invokeErrmsgPrefix + scrubSecrets(a.ErrMsg, tok), HTTPStatus: http.StatusOK}
	}
	if a.RespData == nil || *a.RespData == "" {
		return Outcome{Kind: Transient, HTTPStatus: http.StatusOK,
			Err: fmt.Errorf("%w: the answer has no resp_data", ErrCloudFunctionResult)}
	}
	var r struct {
		ErrCode *int   `json:"errCode"`
		ErrMsg  string `json:"errMsg"`
	}
	// The errors name sizes, never the content: resp_data is whatever the
	// function returned.
	if err := json.Unmarshal([]byte(*a.RespData), &r); err != nil {
		return Outcome{Kind: Transient, HTTPStatus: http.StatusOK,
			Err: fmt.Errorf("%w: resp_data is not a JSON object with a numeric errCode (%d bytes): %w", ErrCloudFunctionResult, len(*a.RespData), err)}
	}
	if r.ErrCode == nil {
		return Outcome{Kind: Transient, HTTPStatus: http.StatusOK,
			Err: fmt.Errorf("%w: resp_data has no errCode (%d bytes); is cloudfunctions/updatePath deployed under the name %q?", ErrCloudFunctionResult, len(*a.RespData), c.cfg.CloudFunction)}
	}
	code := *r.ErrCode
	return Outcome{Kind: classifyFunction(code), ErrCode: code, ErrMsg: scrubSecrets(r.ErrMsg, tok), HTTPStatus: http.StatusOK}
}

// classifyInvoke maps a non-zero errcode of the invoke API. Nothing here is
// about the event except 44002 (an empty body), so the API's own failures
// never dead-letter: system errors are Transient, a Cloud Base that is not
// enabled or a missing env/name is ConfigBroken. Token errcodes are
// TokenInvalid (through Classify), which makes UpdatePath refetch the
// access_token and retry once.
func classifyInvoke(code int) Kind {
	switch code {
	case ErrcodeSystemError, ErrcodeInvokeSystemError:
		return Transient
	case ErrcodeCloudBaseNotEnabled, ErrcodeMissingParameter:
		return ConfigBroken
	}
	if k, ok := classifyCloudBase(code); ok {
		return k
	}
	return Classify(code)
}

// classifyFunction maps the errCode the cloud function returned: that of
// logistics.updatePath (through Classify: 0 Delivered, -1 Transient, 40199
// and 9300507 Rejected, quotas Throttled, ...) or of wx-server-sdk. A token
// errcode here is about the credential Cloud Base uses inside the function,
// not about our access_token: refetching ours would not help, so it is
// Transient rather than TokenInvalid.
func classifyFunction(code int) Kind {
	switch code {
	case ErrcodeInvalidCredential, ErrcodeInvalidToken, ErrcodeTokenExpired, ErrcodeMissingToken:
		return Transient
	}
	if k, ok := classifyCloudBase(code); ok {
		return k
	}
	return Classify(code)
}

// classifyCloudBase maps the Cloud Base errcodes the project knows; ok is
// false for any other code.
func classifyCloudBase(code int) (k Kind, ok bool) {
	switch code {
	case ErrcodeCloudSystemError, ErrcodeCloudTimeout, ErrcodeCloudFunctionCallFail,
		ErrcodeCloudFunctionExecFail, ErrcodeCloudOpenAPITimeout:
		return Transient, true
	case ErrcodeCloudRequestQuota, ErrcodeCloudConcurrencyQuota:
		return Throttled, true
	case ErrcodeCloudEnvInvalid, ErrcodeCloudResourceNotFound, ErrcodeCloudNoAPIPermission, ErrcodeCloudSDKNoPermission:
		return ConfigBroken, true
	}
	return 0, false
}
