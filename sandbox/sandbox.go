package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	DefaultAppID         = "wxsandbox00000000"
	DefaultAppSecret     = "sandbox-app-secret"
	DefaultTokenTTL      = 7200 * time.Second
	DefaultClassicGrace  = 5 * time.Minute
	DefaultCloudEnv      = "sandbox-env"
	DefaultCloudFunction = "updatePath"
)

// Config sets up a Sandbox. The zero value is usable: every zero field gets
// its default from WithDefaults.
type Config struct {
	// AppID and AppSecret are the only credentials the token endpoints
	// accept. Defaults DefaultAppID and DefaultAppSecret.
	AppID     string
	AppSecret string
	// TokenTTL is the life of an issued access token (its expires_in).
	// Default DefaultTokenTTL (7200 s, as WeChat); at least 1 s.
	TokenTTL time.Duration
	// ClassicGrace is how long a replaced token (classic, or stable after a
	// force refresh) stays valid. Default DefaultClassicGrace (5 min, as
	// WeChat); negative means none: a replaced token dies at once.
	ClassicGrace time.Duration
	// StableRenewWindow: a plain stable_token call in the last
	// StableRenewWindow of the current stable token's life gets a new token,
	// the old one staying valid until its own expiry (WeChat renews 5 min
	// early, so an answer never has expires_in below 300 s). Default
	// TokenTTL/24, which is 5 min for the default TokenTTL and keeps the
	// proportion when a test shortens TokenTTL; negative disables renewal.
	StableRenewWindow time.Duration
	// AcceptAnyWaybill accepts any waybill id with any token: no order
	// checks (40199 and 9300507 are never answered). Default false.
	AcceptAnyWaybill bool
	// Orders maps waybill_id to the token registered for it at start.
	// More can be added with AddOrder or POST /sandbox/orders.
	Orders map[string]string
	// Faults injected into path/update and cloud calls from the start.
	// Default none.
	Faults Faults
	// CloudEnv and CloudFunction are the Cloud Base environment id and
	// function name /tcb/invokecloudfunction accepts (others: -501005 and
	// -501009). Defaults DefaultCloudEnv and DefaultCloudFunction.
	CloudEnv      string
	CloudFunction string
	// CloudBaseDisabled makes /tcb/invokecloudfunction answer 85088 (Cloud
	// Base not enabled for the app) to every call with a valid
	// access_token. Default false.
	CloudBaseDisabled bool
	// OpenInterface makes path/update play WeChat Cloud Hosting's
	// open-interface service: calls without access_token are taken, calls
	// with one refused (openinterface.go). Default false.
	OpenInterface bool
	// Seed seeds the fault dice so a run can be repeated; 0 means
	// time-based.
	Seed int64
	// Now is the clock of token lives, outage windows, the minute quota and
	// Call.At. Default time.Now. Latency is always real time.
	Now func() time.Time
	// Logger gets a debug line per path/update call and an info line per
	// admin change. Default: the zero zerolog.Logger, which writes nothing.
	Logger zerolog.Logger
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.AppID == "" {
		c.AppID = DefaultAppID
	}
	if c.AppSecret == "" {
		c.AppSecret = DefaultAppSecret
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.ClassicGrace == 0 {
		c.ClassicGrace = DefaultClassicGrace
	}
	if c.StableRenewWindow == 0 {
		c.StableRenewWindow = c.TokenTTL / 24
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CloudEnv == "" {
		c.CloudEnv = DefaultCloudEnv
	}
	if c.CloudFunction == "" {
		c.CloudFunction = DefaultCloudFunction
	}
	return c
}

// Validate reports the first field of c that cannot work, naming the fix.
// It expects a Config that went through WithDefaults.
func (c Config) Validate() error {
	if c.TokenTTL < time.Second {
		return fmt.Errorf("sandbox: Config.TokenTTL is %v: set at least 1s (expires_in counts whole seconds), or 0 for the default %v", c.TokenTTL, DefaultTokenTTL)
	}
	if c.StableRenewWindow >= c.TokenTTL {
		return fmt.Errorf("sandbox: Config.StableRenewWindow %v is not shorter than TokenTTL %v: every stable_token call would issue a new token; make it shorter, 0 for TokenTTL/24, or negative to disable", c.StableRenewWindow, c.TokenTTL)
	}
	for w, tok := range c.Orders {
		if w == "" || tok == "" {
			return errors.New("sandbox: Config.Orders has an empty waybill id or token: give both")
		}
	}
	if err := c.Faults.Validate(); err != nil {
		return fmt.Errorf("sandbox: Config.Faults: %w", err)
	}
	return nil
}

// Sandbox is the state of one stand-in WeChat API and its http.Handler.
// All methods are safe for concurrent use.
type Sandbox struct {
	cfg    Config // after WithDefaults; read-only after New
	log    zerolog.Logger
	mux    *http.ServeMux
	tokens tokenStore
	rec    record

	mu     sync.Mutex // guards the fields below
	orders map[string]string
	faults Faults
	dice   *mrand.Rand
	quota  minuteQuota
	limits quotaCounters // the daily quota and the second's calls (quota.go)

	oi openInterfaceState // the open-interface service's answer on demand (own lock)
}

// New returns a Sandbox for cfg (defaults filled in), or an error naming
// the field of cfg that is wrong.
func New(cfg Config) (*Sandbox, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	s := &Sandbox{
		cfg:    cfg,
		log:    cfg.Logger,
		orders: make(map[string]string, len(cfg.Orders)),
		faults: cfg.Faults,
		dice:   mrand.New(mrand.NewPCG(uint64(seed), uint64(seed)>>1^0x9e3779b97f4a7c15)),
	}
	for w, tok := range cfg.Orders {
		s.orders[w] = tok
	}
	s.tokens.init()
	s.rec.init()
	s.routes()
	return s, nil
}

// ServeHTTP answers the WeChat endpoints and the admin endpoints. A
// path/update call whose client goes away before its answer is ended with
// panic(http.ErrAbortHandler), which net/http takes as "abort this
// response quietly".
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Sandbox) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/cgi-bin/token", s.handleClassicToken)
	m.HandleFunc("/cgi-bin/stable_token", s.handleStableToken)
	if s.cfg.OpenInterface {
		m.HandleFunc(PathUpdatePath, s.handleOpenInterfacePathUpdate)
	} else {
		m.HandleFunc(PathUpdatePath, s.handlePathUpdate)
	}
	m.HandleFunc(InvokeCloudFunctionPath, s.handleInvokeCloudFunction)
	s.adminRoutes(m)
	s.quotaRoutes(m)
	s.openInterfaceRoutes(m)
	s.mux = m
}

// PathUpdatePath is the URL path of logistics.updatePath.
const PathUpdatePath = "/cgi-bin/express/delivery/path/update"

// Errcodes the sandbox answers (the same numbers as WeChat's).
const (
	ErrcodeOK                = 0
	ErrcodeSystemError       = -1
	ErrcodeInvalidCredential = 40001
	ErrcodeInvalidGrantType  = 40002
	ErrcodeInvalidAppID      = 40013
	ErrcodeInvalidSecret     = 40125
	ErrcodeWaybillNotFound   = 40199
	ErrcodeMissingToken      = 41001
	ErrcodeTokenExpired      = 42001
	ErrcodeRequirePOST       = 43002
	ErrcodeEmptyBody         = 44002
	ErrcodeDailyQuota        = 45009
	ErrcodeMinuteQuota       = 45011
	ErrcodeDataFormat        = 47001
	ErrcodeIncorrectToken    = 9300507

	// The invoke API's and Cloud Base's (see cloudcall.go).
	ErrcodeInvokeSystemError   = -1000
	ErrcodeMissingParameter    = 40101
	ErrcodeCloudBaseNotEnabled = 85088
	ErrcodeCloudEnvInvalid     = -501005
	ErrcodeCloudFunctionAbsent = -501009
)

// errmsgs are WeChat's wordings where known.
var errmsgs = map[int]string{
	ErrcodeOK:                "ok",
	ErrcodeSystemError:       "system error",
	ErrcodeInvalidCredential: "invalid credential, access_token is invalid or not latest",
	ErrcodeInvalidGrantType:  "invalid grant_type",
	ErrcodeInvalidAppID:      "invalid appid",
	ErrcodeInvalidSecret:     "invalid appsecret",
	ErrcodeWaybillNotFound:   "waybill not found",
	ErrcodeMissingToken:      "access_token missing",
	ErrcodeTokenExpired:      "access_token expired",
	ErrcodeRequirePOST:       "require POST method",
	ErrcodeEmptyBody:         "empty post data",
	ErrcodeDailyQuota:        "reach max api daily quota limit",
	ErrcodeMinuteQuota:       "api minute-quota reach limit  mustslower  retry next minute",
	ErrcodeDataFormat:        "data format error",
	ErrcodeIncorrectToken:    "incorrect token",
	ErrcodeQuotaBadPath:      "invalid cgi_path, must start with / and carry no host",
	ErrcodeQuotaPathNotFound: "cgi_path not found, please check",

	ErrcodeInvokeSystemError:   "system error",
	ErrcodeMissingParameter:    "missing parameter",
	ErrcodeCloudBaseNotEnabled: "cloud base not enabled for this app",
	ErrcodeCloudEnvInvalid:     "env not exists",
	ErrcodeCloudFunctionAbsent: "function not found",
}

// writeErrcode answers HTTP 200 with {"errcode":N,"errmsg":"..."}, the errmsg
// of an error carrying a request id the way WeChat's do.
func writeErrcode(w http.ResponseWriter, code int) {
	msg := errmsgs[code]
	if code != ErrcodeOK {
		msg += " rid: " + newID(8)
	}
	writeJSON(w, http.StatusOK, struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}{code, msg})
}

// writeJSON answers v as JSON with the Content-Type WeChat uses.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types get here; a failure is a bug
		http.Error(w, "sandbox: encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// newID returns n random bytes in hex: request ids and access tokens.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// wholeSeconds is d in whole seconds, never negative: expires_in.
func wholeSeconds(d time.Duration) int64 {
	return int64(math.Max(0, math.Floor(d.Seconds())))
}
