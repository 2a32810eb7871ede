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

// parseUpdate reads a path/update body with the sandbox's own rules. It
// returns what it could read, and ErrcodeEmptyBody, ErrcodeDataFormat or
// ErrcodeOK.
func parseUpdate(body []byte) (updateBody, int) {
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
	ok := field(fields, "token", &u.Token)
	ok = field(fields, "waybill_id", &u.WaybillID) && ok
	ok = field(fields, "action_time", &u.ActionTime) && ok
	ok = field(fields, "action_type", &u.ActionType) && ok
	ok = field(fields, "action_msg", &u.ActionMsg) && ok
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
	at := r.URL.Query().Get("access_token")
	code := ErrcodeOK
	if at == "" {
		code = ErrcodeMissingToken
	} else {
		switch s.tokens.check(at, s.cfg.Now()) {
		case tokenInvalid:
			code = ErrcodeInvalidCredential
		case tokenExpired:
			code = ErrcodeTokenExpired
		}
	}
	if code != ErrcodeOK {
		s.rec.count(http.StatusOK, code)
		writeErrcode(w, code)
		return
	}

	// Past the access_token check every call is recorded, in arrival order,
	// whatever becomes of it.
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody))
	u, bodyCode := parseUpdate(body)
	h := s.rec.arrive(Call{
		At:         s.cfg.Now(),
		WaybillID:  u.WaybillID,
		Token:      u.Token,
		ActionTime: u.ActionTime,
		ActionType: u.ActionType,
		ActionMsg:  u.ActionMsg,
		UserAgent:  r.UserAgent(),
	})
	if readErr != nil { // the client is gone
		s.finish(h, StatusClientClosed, 0, u)
		panic(http.ErrAbortHandler)
	}

	status, latency := s.faultBefore(s.cfg.Now())
	if status != 0 {
		s.finish(h, status, 0, u)
		http.Error(w, http.StatusText(status), status)
		return
	}
	if !wait(r.Context(), latency) {
		s.finish(h, StatusClientClosed, 0, u)
		// Returning normally would make net/http send an empty 200 if the
		// connection is still up (a Server closing): abort it instead.
		panic(http.ErrAbortHandler)
	}
	code = s.faultAfter(s.cfg.Now())
	if code == ErrcodeOK {
		code = bodyCode
	}
	if code == ErrcodeOK {
		code = s.checkOrder(u.WaybillID, u.Token)
	}
	s.finish(h, http.StatusOK, code, u)
	writeErrcode(w, code)
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
func (s *Sandbox) finish(h callHandle, status, code int, u updateBody) {
	s.rec.finish(h, status, code)
	s.log.Debug().Str("waybill_id", u.WaybillID).Int64("action_time", u.ActionTime).
		Int("action_type", u.ActionType).Int("http_status", status).Int("errcode", code).
		Msg("sandbox: path/update")
}
