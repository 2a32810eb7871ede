package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// maxBody is the most of a request body the sandbox reads; the rest is cut,
// which makes an oversized event a data format error.
const maxBody = 1 << 20

// actionTypes are the action_type values WeChat documents for updatePath.
var actionTypes = map[int]bool{
	100001: true, 100002: true, 100003: true,
	200001: true,
	300002: true, 300003: true, 300004: true,
	400001: true, 400002: true,
}

// updateBody is the request body of path/update as far as it could be read:
// what the record shows even when the body is wrong.
type updateBody struct {
	Token      string
	WaybillID  string
	ActionTime int64
	ActionType int
	ActionMsg  string
}

// bodyKeys are the JSON keys of the five fields of an updatePath body, in
// wire order: token, waybill id, action time, action type, action message.
type bodyKeys [5]string

// The two spellings: the HTTPS request body, and the cloud-call argument
// the cloud function receives. Each endpoint takes only its own.
var (
	httpsKeys     = bodyKeys{"token", "waybill_id", "action_time", "action_type", "action_msg"}
	cloudCallKeys = bodyKeys{"token", "waybillId", "actionTime", "actionType", "actionMsg"}
)

// parseUpdate reads an updatePath body spelt with keys by the sandbox's own
// rules. It returns what it could read, and ErrcodeEmptyBody,
// ErrcodeDataFormat or ErrcodeOK.
func parseUpdate(body []byte, keys bodyKeys) (updateBody, int) {
	var u updateBody
	if len(body) == 0 {
		return u, ErrcodeEmptyBody
	}
	if len(body) >= maxBody {
		return u, ErrcodeDataFormat
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return u, ErrcodeDataFormat
	}
	// Every field is read even after one failed, so the record shows as
	// much of the call as there is.
	ok := field(fields, keys[0], &u.Token)
	ok = field(fields, keys[1], &u.WaybillID) && ok
	ok = field(fields, keys[2], &u.ActionTime) && ok
	ok = field(fields, keys[3], &u.ActionType) && ok
	ok = field(fields, keys[4], &u.ActionMsg) && ok
	if !ok || u.Token == "" || u.WaybillID == "" || u.ActionMsg == "" ||
		u.ActionTime <= 0 || !actionTypes[u.ActionType] {
		return u, ErrcodeDataFormat
	}
	return u, ErrcodeOK
}

// field decodes fields[name] into dst (a *string, *int or *int64) and
// reports whether it is there with the right JSON type. Numbers must be
// integers: 1.5 or "1" fail.
func field(fields map[string]json.RawMessage, name string, dst any) bool {
	raw, ok := fields[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return false
	}
	return json.Unmarshal(raw, dst) == nil
}

// handlePathUpdate is POST /cgi-bin/express/delivery/path/update.
func (s *Sandbox) handlePathUpdate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.rec.count(http.StatusOK, ErrcodeRequirePOST)
		writeErrcode(w, ErrcodeRequirePOST)
		return
	}
	if code := s.checkAccessToken(r); code != ErrcodeOK {
		s.rec.count(http.StatusOK, code)
		writeErrcode(w, code)
		return
	}
	s.update(w, r, updateAPI{keys: httpsKeys, answer: writeErrcode})
}

// checkAccessToken answers the errcode for the access_token of r: 41001
// missing, 40001 unknown or replaced, 42001 expired, else ErrcodeOK.
func (s *Sandbox) checkAccessToken(r *http.Request) int {
	at := r.URL.Query().Get("access_token")
	if at == "" {
		return ErrcodeMissingToken
	}
	switch s.tokens.check(at, s.cfg.Now()) {
	case tokenInvalid:
		return ErrcodeInvalidCredential
	case tokenExpired:
		return ErrcodeTokenExpired
	}
	return ErrcodeOK
}

// updateAPI is what differs between the two ways of calling
// logistics.updatePath the sandbox serves; update does the rest.
type updateAPI struct {
	via  string   // Call.Via: "" for path/update, ViaCloudCall
	keys bodyKeys // the body's spelling
	// invokeFault, when set, runs after the latency and before the
	// updatePath checks: an errcode other than ErrcodeOK is answered as
	// the invoke API's own (the function never runs). bodyCode is the
	// body's verdict.
	invokeFault func(bodyCode int) int
	// answer writes the HTTP 200 answer carrying updatePath's errcode.
	answer func(w http.ResponseWriter, code int)
}

// update is one logistics.updatePath call past the access_token check:
// record, faults, body, order, answer. Both endpoints run it, so order and
// duplicate checks see the calls of either transport in one record.
func (s *Sandbox) update(w http.ResponseWriter, r *http.Request, api updateAPI) {
	// Past the access_token check every call is recorded, in arrival order,
	// whatever becomes of it.
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody))
	u, bodyCode := parseUpdate(body, api.keys)
	h := s.rec.arrive(Call{
		At:         s.cfg.Now(),
		WaybillID:  u.WaybillID,
		Token:      u.Token,
		ActionTime: u.ActionTime,
		ActionType: u.ActionType,
		ActionMsg:  u.ActionMsg,
		Via:        api.via,
		UserAgent:  r.UserAgent(),
	})
	if readErr != nil { // the client is gone
		s.finish(h, StatusClientClosed, 0, u, api.via)
		panic(http.ErrAbortHandler)
	}

	status, latency := s.faultBefore(s.cfg.Now())
	if status != 0 {
		s.finish(h, status, 0, u, api.via)
		http.Error(w, http.StatusText(status), status)
		return
	}
	if !wait(r.Context(), latency) {
		s.finish(h, StatusClientClosed, 0, u, api.via)
		// Returning normally would make net/http send an empty 200 if the
		// connection is still up (a Server closing): abort it instead.
		panic(http.ErrAbortHandler)
	}
	if api.invokeFault != nil {
		if code := api.invokeFault(bodyCode); code != ErrcodeOK {
			s.finish(h, http.StatusOK, code, u, api.via)
			writeErrcode(w, code)
			return
		}
	}
	code := s.faultAfter(s.cfg.Now(), u.WaybillID)
	if code == ErrcodeOK {
		code = bodyCode
	}
	if code == ErrcodeOK {
		code = s.checkOrder(u.WaybillID, u.Token)
	}
	s.finish(h, http.StatusOK, code, u, api.via)
	api.answer(w, code)
}

// checkOrder answers 40199 for an unknown waybill and 9300507 for a token
// that is not the one registered for it, unless AcceptAnyWaybill.
func (s *Sandbox) checkOrder(waybillID, token string) int {
	if s.cfg.AcceptAnyWaybill {
		return ErrcodeOK
	}
	s.mu.Lock()
	want, ok := s.orders[waybillID]
	s.mu.Unlock()
	switch {
	case !ok:
		return ErrcodeWaybillNotFound
	case want != token:
		return ErrcodeIncorrectToken
	}
	return ErrcodeOK
}

// finish records the answer of a call and logs it.
func (s *Sandbox) finish(h callHandle, status, code int, u updateBody, via string) {
	s.rec.finish(h, status, code)
	msg := "sandbox: path/update"
	if via == ViaCloudCall {
		msg = "sandbox: invokecloudfunction"
	}
	s.log.Debug().Str("waybill_id", u.WaybillID).Int64("action_time", u.ActionTime).
		Int("action_type", u.ActionType).Int("http_status", status).Int("errcode", code).
		Msg(msg)
}
