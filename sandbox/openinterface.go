package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// The open-interface service of WeChat Cloud Hosting (Config.OpenInterface).
// A container in Cloud Hosting calls http://api.weixin.qq.com/... with no
// access_token; the platform's sidecar and WeChat's gateway authenticate
// it. In this mode path/update:
//
//   - takes a call without access_token (nothing else changes: body,
//     faults, orders and the record are those of the HTTPS path), and
//     answers with the x-openapi-seqid header WeChat adds to calls that went
//     through the service;
//   - refuses a call that carries an access_token with errcode 40001, as a
//     reminder that the token is not needed (a client then refetches its
//     token and waits: nothing is dead-lettered);
//   - answers, on demand (SetOpenInterfaceAnswer, PUT
//     /sandbox/open-interface), what the service answers when it is not set
//     up or not ready: 41001, 85107, 85112, 85113, 48001, HTTP 502, or a
//     gateway's error_type. Such calls are counted (Stats) but not recorded
//     as Calls: they never reached logistics.updatePath.
//
// The token endpoints keep answering, so a test can show that a worker in
// this mode never fetched a token (Stats.StableTokenCalls and
// ClassicTokenCalls stay 0).

// OpenInterfaceAnswer is what the open-interface service answers instead of
// passing a call on; OpenInterfacePass passes it on.
type OpenInterfaceAnswer string

// The answers of SetOpenInterfaceAnswer, named as PUT /sandbox/open-interface
// takes them.
const (
	OpenInterfacePass           OpenInterfaceAnswer = ""
	OpenInterfaceServiceOff     OpenInterfaceAnswer = "41001"         // access_token missing: the service is off or not in effect yet
	OpenInterfaceNotWhitelisted OpenInterfaceAnswer = "85107"         // the URL is not on the service's whitelist
	OpenInterfaceLinkError      OpenInterfaceAnswer = "85112"         // cloudbase_secret not found
	OpenInterfaceNotReady       OpenInterfaceAnswer = "85113"         // cloudbase_token is not ready yet
	OpenInterfaceUnauthorized   OpenInterfaceAnswer = "48001"         // api unauthorized
	OpenInterfaceBadGateway     OpenInterfaceAnswer = "502"           // HTTP 502 from the gateway
	OpenInterfaceGatewayError   OpenInterfaceAnswer = "gateway_error" // {"error_type":"GatewayError",...} and no errcode
)

// Errcodes of the open-interface service.
const (
	ErrcodeAPIUnauthorized       = 48001
	ErrcodeCloudbaseSecretAbsent = 85112
	ErrcodeCloudbaseTokenPending = 85113
	ErrcodePathNotWhitelisted    = 85107
)

// openInterfaceAnswers maps each answer but OpenInterfacePass to the
// errcode it answers with HTTP 200 (0 for those that are not an errcode)
// and its errmsg, in the wording of WeChat's Cloud Hosting FAQ.
var openInterfaceAnswers = map[OpenInterfaceAnswer]struct {
	code int
	msg  string
}{
	OpenInterfaceServiceOff:     {ErrcodeMissingToken, "access_token missing"},
	OpenInterfaceNotWhitelisted: {ErrcodePathNotWhitelisted, "URL不在白名单内,请前往「微信云托管控制台-服务管理-云调用-微信令牌」配置"},
	OpenInterfaceLinkError:      {ErrcodeCloudbaseSecretAbsent, "cloudbase_secret not found"},
	OpenInterfaceNotReady:       {ErrcodeCloudbaseTokenPending, "cloudbase_token is not ready yet, please try again later"},
	OpenInterfaceUnauthorized:   {ErrcodeAPIUnauthorized, "api unauthorized"},
	OpenInterfaceBadGateway:     {},
	OpenInterfaceGatewayError:   {},
}

// validate reports an answer the sandbox does not know.
func (a OpenInterfaceAnswer) validate() error {
	if _, ok := openInterfaceAnswers[a]; ok || a == OpenInterfacePass {
		return nil
	}
	return fmt.Errorf("open-interface answer %q: want \"\" (pass calls on), 41001, 85107, 85112, 85113, 48001, 502 or gateway_error", string(a))
}

// openInterfaceState is the answer set on demand.
type openInterfaceState struct {
	mu     sync.Mutex
	answer OpenInterfaceAnswer
}

// SetOpenInterfaceAnswer makes the open-interface service answer a from the
// next call on (OpenInterfacePass: pass calls on again). It only matters
// with Config.OpenInterface; an unknown answer is an error.
func (s *Sandbox) SetOpenInterfaceAnswer(a OpenInterfaceAnswer) error {
	if err := a.validate(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	s.oi.mu.Lock()
	s.oi.answer = a
	s.oi.mu.Unlock()
	s.log.Info().Str("answer", string(a)).Msg("sandbox: open-interface answer set")
	return nil
}

// OpenInterfaceAnswer returns the answer set by SetOpenInterfaceAnswer.
func (s *Sandbox) OpenInterfaceAnswer() OpenInterfaceAnswer {
	s.oi.mu.Lock()
	defer s.oi.mu.Unlock()
	return s.oi.answer
}

// handleOpenInterfacePathUpdate is path/update with Config.OpenInterface.
func (s *Sandbox) handleOpenInterfacePathUpdate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.rec.count(http.StatusOK, ErrcodeRequirePOST)
		writeErrcode(w, ErrcodeRequirePOST)
		return
	}
	if r.URL.Query().Has("access_token") {
		s.rec.count(http.StatusOK, ErrcodeInvalidCredential)
		writeJSON(w, http.StatusOK, errAnswer{ErrcodeInvalidCredential,
			"invalid credential: calls through the open-interface service carry no access_token (sandbox: use --token-source none) rid: " + newID(8)})
		return
	}
	a := s.OpenInterfaceAnswer()
	switch a {
	case OpenInterfacePass:
		w.Header().Set("X-Openapi-Seqid", newID(8))
		s.update(w, r, updateAPI{via: ViaOpenInterface, keys: httpsKeys, answer: writeErrcode})
	case OpenInterfaceBadGateway:
		s.rec.count(http.StatusBadGateway, 0)
		http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
	case OpenInterfaceGatewayError:
		s.rec.count(http.StatusOK, 0)
		writeJSON(w, http.StatusOK, map[string]string{"error_type": "GatewayError", "error_msg": "gateway error rid: " + newID(8)})
	default:
		e := openInterfaceAnswers[a]
		s.rec.count(http.StatusOK, e.code)
		writeJSON(w, http.StatusOK, errAnswer{e.code, e.msg + " rid: " + newID(8)})
	}
}

// errAnswer is WeChat's error answer.
type errAnswer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// ViaOpenInterface is Call.Via of a call made through the open-interface
// service.
const ViaOpenInterface = "open_interface"

// OpenInterfaceRequest is the body of PUT /sandbox/open-interface and its
// answer (and that of GET).
type OpenInterfaceRequest struct {
	Answer OpenInterfaceAnswer `json:"answer"`
}

func (s *Sandbox) handleGetOpenInterface(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, OpenInterfaceRequest{Answer: s.OpenInterfaceAnswer()})
}

func (s *Sandbox) handlePutOpenInterface(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	var req OpenInterfaceRequest
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, fmt.Errorf("open-interface: %w", err))
		return
	}
	if err := s.SetOpenInterfaceAnswer(req.Answer); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, OpenInterfaceRequest{Answer: s.OpenInterfaceAnswer()})
}

// openInterfaceRoutes adds the mode's admin endpoints.
func (s *Sandbox) openInterfaceRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /sandbox/open-interface", s.handleGetOpenInterface)
	m.HandleFunc("PUT /sandbox/open-interface", s.handlePutOpenInterface)
}
