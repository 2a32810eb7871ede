package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
)

// InvokeCloudFunctionPath is the URL path of tcb.invokeCloudFunction, the
// HTTP API that runs a Cloud Base function.
const InvokeCloudFunctionPath = "/tcb/invokecloudfunction"

// handleInvokeCloudFunction is POST /tcb/invokecloudfunction?access_token=AT&env=E&name=N.
//
// The sandbox plays the invoke API and the repo's cloud function
// (cloudfunctions/updatePath) together: the function takes the event in
// the cloud-call spelling, calls logistics.updatePath and returns
// {errCode, errMsg}, which the invoke API hands back as the string
// resp_data of {"errcode":0,"errmsg":"ok","resp_data":"..."}. The
// updatePath part is the very code path/update runs (Sandbox.update), so
// both transports share faults, checks and the record.
//
// Refused by the invoke API before the function runs, counted but not
// recorded: another method (43002), the access_token (41001, 40001, 42001,
// as path/update; WeChat documents 40014 for this API, which clients treat
// the same), env or name missing (40101), Cloud Base disabled
// (Config.CloudBaseDisabled: 85088), an env other than Config.CloudEnv
// (-501005, Cloud Base's "environment information abnormal") or a name
// other than Config.CloudFunction (-501009, "resource invalid or does not
// exist"). WeChat does not document the answers to an unknown env or
// function; those two are this sandbox's choice from Cloud Base's errcode
// list. Recorded, answered by the invoke API: an empty body (44002) and
// Faults.InvokeErrorRate (Faults.InvokeErrcode, -1 by default).
func (s *Sandbox) handleInvokeCloudFunction(w http.ResponseWriter, r *http.Request) {
	s.rec.countCloud()
	code := ErrcodeOK
	if r.Method != http.MethodPost {
		code = ErrcodeRequirePOST
	}
	if code == ErrcodeOK {
		code = s.checkAccessToken(r)
	}
	if code == ErrcodeOK {
		code = s.checkCloudTarget(r.URL.Query())
	}
	if code != ErrcodeOK {
		s.rec.count(http.StatusOK, code)
		writeErrcode(w, code)
		return
	}
	s.update(w, r, updateAPI{
		via:         ViaCloudCall,
		keys:        cloudCallKeys,
		invokeFault: s.cloudInvokeFault,
		answer:      writeFunctionResult,
	})
}

// checkCloudTarget answers the invoke API's errcode for the env and name
// of a call, ErrcodeOK when they name the sandbox's function.
func (s *Sandbox) checkCloudTarget(q url.Values) int {
	env, name := q.Get("env"), q.Get("name")
	switch {
	case env == "" || name == "":
		return ErrcodeMissingParameter
	case s.cfg.CloudBaseDisabled:
		return ErrcodeCloudBaseNotEnabled
	case env != s.cfg.CloudEnv:
		return ErrcodeCloudEnvInvalid
	case name != s.cfg.CloudFunction:
		return ErrcodeCloudFunctionAbsent
	}
	return ErrcodeOK
}

// cloudInvokeFault is the invoke API's say after the latency: an empty
// body is its 44002 (the function gets no input), then the injected invoke
// error.
func (s *Sandbox) cloudInvokeFault(bodyCode int) int {
	if bodyCode == ErrcodeEmptyBody {
		return ErrcodeEmptyBody
	}
	return s.invokeFault()
}

// FunctionResult is what the repo's cloud function returns, and so the
// JSON inside resp_data.
type FunctionResult struct {
	ErrCode int    `json:"errCode"`
	ErrMsg  string `json:"errMsg"`
}

// InvokeAnswer is the answer of /tcb/invokecloudfunction.
type InvokeAnswer struct {
	ErrCode  int    `json:"errcode"`
	ErrMsg   string `json:"errmsg"`
	RespData string `json:"resp_data,omitempty"`
}

// writeFunctionResult answers a function that ran: invoke errcode 0 and
// resp_data holding updatePath's errcode as the function returns it, with
// wx-server-sdk's errMsg wording ("openapi.logistics.updatePath:ok", or
// ":fail " and WeChat's errmsg).
func writeFunctionResult(w http.ResponseWriter, code int) {
	res := FunctionResult{ErrCode: code, ErrMsg: "openapi.logistics.updatePath:ok"}
	if code != ErrcodeOK {
		res.ErrMsg = "openapi.logistics.updatePath:fail " + errmsgs[code] + " rid: " + newID(8)
	}
	data, err := json.Marshal(res)
	if err != nil { // a struct of an int and a string always marshals
		http.Error(w, "sandbox: encoding the function result: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, InvokeAnswer{ErrCode: ErrcodeOK, ErrMsg: "ok", RespData: string(data)})
}
