package pathupdate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// maxAnswerSize is the most of an answer body read: WeChat's answers are
// a few dozen bytes; anything bigger is not an answer we can use.
const maxAnswerSize = 64 << 10

// updatePathPath is logistics.updatePath below the API base.
const updatePathPath = "/cgi-bin/express/delivery/path/update"

// ClientConfig configures a Client.
type ClientConfig struct {
	// APIBase is the WeChat API root. Default DefaultAPIBase.
	APIBase string
	// Tokens hands out access_tokens. Required.
	Tokens TokenSource
	// HTTPClient sends the requests. Default NewHTTPClient(DefaultHTTPTimeout).
	// Redirects are never followed whatever client is given.
	HTTPClient *http.Client
	// Timeout bounds one updatePath request (the retry after a refused
	// token gets its own). Default DefaultCallTimeout. A shorter
	// HTTPClient.Timeout bounds it instead.
	Timeout time.Duration
	// UserAgent is sent as the User-Agent of every request. Default: Go's.
	UserAgent string
	// Logger gets one debug line per call (waybill, errcode, duration,
	// never the token). Default: the zero Logger, which drops everything.
	Logger zerolog.Logger
	// Now is the clock the logged call durations are measured on. Default
	// time.Now.
	Now func() time.Time

	// Transport is how an event reaches logistics.updatePath:
	// TransportHTTPS (the default) calls the API itself; TransportCloudCall
	// invokes a Cloud Base function that calls it (see cloudcall.go).
	Transport string
	// CloudEnv is the Cloud Base environment id. Required for
	// TransportCloudCall, ignored otherwise.
	CloudEnv string
	// CloudFunction is the name of the deployed cloud function (the repo's
	// cloudfunctions/updatePath). Required for TransportCloudCall, ignored
	// otherwise.
	CloudFunction string
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c ClientConfig) WithDefaults() ClientConfig {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient(DefaultHTTPTimeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCallTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Transport == "" {
		c.Transport = TransportHTTPS
	}
	return c
}

// Validate reports what a Client cannot work without, as FieldErrors.
func (c ClientConfig) Validate() error {
	errs := FieldErrors{Prefix: "pathupdate: ClientConfig."}
	if p := apiBaseProblem(c.APIBase); p != "" {
		errs.Add("APIBase", "%s", p)
	}
	if c.Tokens == nil {
		errs.Add("Tokens", "nil: use NewStableTokenSource (or classic, static, file), or TokenSourceConfig.New")
	}
	if c.Timeout < 0 {
		errs.Add("Timeout", "%v: use a positive duration or 0 for the default %v", c.Timeout, DefaultCallTimeout)
	}
	c.validateTransport(&errs)
	c.validateOpenInterface(&errs)
	return errs.Err()
}

// Client calls logistics.updatePath, over HTTPS or through a cloud function
// (ClientConfig.Transport). It is safe for concurrent use.
type Client struct {
	cfg ClientConfig
	hc  *http.Client
	// timeout bounds one request, through its context: the tighter of
	// cfg.Timeout and the given client's Timeout. hc has no Timeout of its
	// own, which would cost a timer and a goroutine in net/http for
	// every request on top of the context's.
	timeout time.Duration
	// contentType and userAgent are the header values of every request.
	contentType, userAgent []string
	// rt is hc's transport when requests can skip hc (see send); nil
	// when they cannot.
	rt    http.RoundTripper
	url   string // the endpoint's URL without any query
	query string // query parameters after the access_token ("" or "&env=..&name=..")
	// encode and call are the transport: the request body of an event, and
	// one request with one access_token (post for HTTPS, invoke for the
	// Cloud Call). UpdatePath's token handling serves both.
	encode func(Event) []byte
	call   func(ctx context.Context, tok Secret, body []byte) Outcome
	oi     *openInterface // with NewNoTokenSource: the open-interface service's state, else nil
	// lastURL is the URL of the last token used (requestURL).
	lastURL atomic.Pointer[tokenURL]
}

// NewClient returns a Client for cfg (defaults filled in).
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, hc: noRedirects(cfg.HTTPClient), timeout: cfg.Timeout, url: cfg.APIBase + updatePathPath, encode: Event.Encode}
	if t := c.hc.Timeout; t > 0 && t < c.timeout {
		c.timeout = t
	}
	c.hc.Timeout = 0
	c.contentType = []string{"application/json"}
	if c.hc.Jar == nil {
		c.rt = c.hc.Transport
		if c.rt == nil {
			c.rt = http.DefaultTransport
		}
	}
	if cfg.UserAgent != "" {
		c.userAgent = []string{cfg.UserAgent}
	}
	c.call = c.post
	if cfg.Transport == TransportCloudCall {
		c.useCloudCall()
	}
	if callsWithoutToken(cfg.Tokens) {
		c.useOpenInterface()
	}
	return c, nil
}

// NewHTTPClient returns an http.Client tuned for many concurrent calls to
// one host: NewHTTPClientFor(timeout, DefaultHTTPCalls).
func NewHTTPClient(timeout time.Duration) *http.Client {
	return NewHTTPClientFor(timeout, DefaultHTTPCalls)
}

// DefaultHTTPCalls is the calls in flight NewHTTPClient's client is sized
// for.
const DefaultHTTPCalls = 256

// httpSpareConns are the connections a client keeps beyond the calls it is
// sized for: a token fetch to the same host must not wait behind them.
const httpSpareConns = 4

// NewHTTPClientFor returns an http.Client for up to calls requests in
// flight at once to one host: a connection for each kept open between
// calls (an HTTP/1.1 connection carries one request at a time, and a new
// one costs a TCP and TLS handshake), at most calls plus a few spare open
// at once, bounded dial, TLS handshake and response-header waits, HTTP/2
// when the server offers it, proxies from the environment. timeout bounds
// a whole request (0: no bound beyond the callers' contexts).
//
// Each connection costs about 30 KiB (two 4 KiB buffers and the two
// goroutines net/http runs for it), so 4,096 calls in flight take about
// 120 MiB.
func NewHTTPClientFor(timeout time.Duration, calls int) *http.Client {
	calls = max(calls, 1)
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	headerTimeout := 30 * time.Second
	if timeout > 0 {
		headerTimeout = min(headerTimeout, timeout)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          calls + httpSpareConns,
		MaxIdleConnsPerHost:   calls + httpSpareConns,
		MaxConnsPerHost:       calls + httpSpareConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// UpdatePath delivers ev and classifies the answer. When WeChat refuses the
// access_token (40001, 40014, 42001, 41001) the token is invalidated and
// the call retried once with a fresh one; a second refusal is TokenInvalid.
// This holds for both transports; the rest of this comment is about HTTPS
// (the Cloud Call's answers are mapped as cloudcall.go describes).
//
// Non-200 answers are Transient, 4xx included: WeChat itself answers every
// error with HTTP 200 and an errcode, so a non-200 comes from something in
// between (a gateway, proxy or load balancer) and says nothing about the
// event; dead-lettering on it would lose events to an infrastructure fault.
// A cancelled ctx gives Transient with Err wrapping ctx.Err().
func (c *Client) UpdatePath(ctx context.Context, ev Event) Outcome {
	start := c.cfg.Now()
	body := c.encode(ev)
	o, tok := c.attempt(ctx, body)
	attempts := 1
	if o.Kind == TokenInvalid && tok != "" {
		c.cfg.Tokens.Invalidate(ctx, tok)
		o, tok = c.attempt(ctx, body)
		attempts = 2
		if o.Kind == TokenInvalid && tok != "" {
			// Let the next call start from a fresh token too.
			c.cfg.Tokens.Invalidate(ctx, tok)
		}
	}
	c.cfg.Logger.Debug().Str("transport", c.cfg.Transport).Str("waybill_id", ev.WaybillID).Stringer("kind", o.Kind).
		Int("errcode", o.ErrCode).Int("http_status", o.HTTPStatus).Int("attempts", attempts).
		Dur("duration", c.cfg.Now().Sub(start)).Err(MaskPhonesError(o.Err)).Msg("updatePath")
	return o
}

// Probe checks, without calling updatePath, that the client could call it
// now: it gets an access_token from the source (cached, or fetched). A nil
// error means one is at hand; otherwise the error is the source's, a
// *TokenError whose Kind says whether waiting can help (ConfigBroken:
// WeChat refuses the app's credentials, a human must act).
func (c *Client) Probe(ctx context.Context) error {
	_, err := c.cfg.Tokens.Token(ctx)
	return err
}

// attempt makes one call with a token from the source; tok is the token
// used, "" when none was had.
func (c *Client) attempt(ctx context.Context, body []byte) (Outcome, Secret) {
	tok, err := c.cfg.Tokens.Token(ctx)
	if err != nil {
		return tokenOutcome(ctx, err), ""
	}
	return c.call(ctx, tok, body), tok
}

// tokenOutcome maps a TokenSource error to an Outcome.
func tokenOutcome(ctx context.Context, err error) Outcome {
	var te *TokenError
	if errors.As(err, &te) {
		return Outcome{Kind: te.Kind(), Err: err}
	}
	return Outcome{Kind: Transient, Err: withCtxErr(ctx, err)}
}

// withCtxErr makes sure err wraps ctx.Err() when ctx is done, so callers
// can tell a cancellation from a failure with errors.Is.
func withCtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// post is one HTTPS call of logistics.updatePath.
func (c *Client) post(ctx context.Context, tok Secret, body []byte) Outcome {
	raw, o, ok := c.roundTrip(ctx, tok, body)
	if !ok {
		return o
	}
	if string(bytes.TrimRight(raw, " \t\r\n")) == okAnswer {
		// Nearly every answer is this one: reading it with encoding/json
		// cost a tenth of a delivery's allocations. answerOutcome makes
		// the same of it (TestOKAnswerFastPath).
		return okOutcome(tok)
	}
	return answerOutcome(raw, tok)
}

// okOutcome is the Outcome of okAnswer to a call made with tok.
func okOutcome(tok Secret) Outcome {
	return Outcome{Kind: Delivered, ErrMsg: scrubSecrets(okErrMsg, tok), HTTPStatus: http.StatusOK}
}

// answerOutcome classifies raw, the body of an HTTP 200 answer to a call
// made with tok.
func answerOutcome(raw []byte, tok Secret) Outcome {
	var a struct {
		ErrCode   json.RawMessage `json:"errcode"`
		ErrMsg    string          `json:"errmsg"`
		ErrorType string          `json:"error_type"` // a gateway's (openinterface.go)
	}
	if err := decodeJSON(raw, &a); err != nil {
		return Outcome{Kind: Transient, HTTPStatus: http.StatusOK, Err: err}
	}
	if a.ErrCode == nil && a.ErrorType != "" {
		return Outcome{Kind: Transient, HTTPStatus: http.StatusOK,
			Err: fmt.Errorf("%w: %.40q", ErrGatewayAnswer, scrubSecrets(a.ErrorType, tok))}
	}
	code := 0 // some APIs leave errcode out on success
	if a.ErrCode != nil {
		// Only a number is an errcode. Reading a null (or anything else) as
		// 0 would take an answer nobody can vouch for as a delivery and
		// lose the event; as Transient it is tried again.
		if bytes.Equal(a.ErrCode, []byte("null")) || json.Unmarshal(a.ErrCode, &code) != nil {
			return Outcome{Kind: Transient, HTTPStatus: http.StatusOK,
				Err: fmt.Errorf("answer's errcode is not an integer (%d bytes)", len(a.ErrCode))}
		}
	}
	return Outcome{Kind: Classify(code), ErrCode: code, ErrMsg: scrubSecrets(a.ErrMsg, tok), HTTPStatus: http.StatusOK}
}

// okAnswer is WeChat's answer to a delivered event, as it sends it;
// okErrMsg is its errmsg.
const (
	okAnswer = `{"errcode":0,"errmsg":"ok"}`
	okErrMsg = "ok"
)

// roundTrip POSTs body to the endpoint with tok as access_token, bounded by
// Timeout, and returns the body of an HTTP 200 answer. Anything else (a
// transport failure, a body that cannot be read, another status) comes
// back as a Transient Outcome with ok false, its error scrubbed of tok.
func (c *Client) roundTrip(ctx context.Context, tok Secret, body []byte) (raw []byte, o Outcome, ok bool) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.requestURL(tok)
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, Outcome{Kind: Transient, Err: redactURLError(err)}, false
	}
	// The header values are the client's, shared by every request:
	// net/http only reads them.
	req.Header["Content-Type"] = c.contentType
	if c.userAgent != nil {
		req.Header["User-Agent"] = c.userAgent
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, Outcome{Kind: Transient, Err: withCtxErr(ctx, redactURLError(err))}, false
	}
	raw, status, err := readAnswer(resp)
	if err != nil {
		return nil, Outcome{Kind: Transient, HTTPStatus: status, Err: withCtxErr(ctx, redactURLError(err))}, false
	}
	if status != http.StatusOK {
		return nil, Outcome{Kind: Transient, HTTPStatus: status}, false
	}
	return raw, Outcome{}, true
}

// tokenURL is the request URL with one access_token.
type tokenURL struct {
	tok Secret
	url string
}

// requestURL is the URL of a request with tok as access_token. The last
// one is kept: a token serves thousands of calls, and escaping it and
// building the URL anew cost two allocations of its size on each.
func (c *Client) requestURL(tok Secret) string {
	if tok == "" { // none through the open-interface service (openinterface.go)
		return c.url
	}
	if last := c.lastURL.Load(); last != nil && last.tok == tok {
		return last.url
	}
	u := &tokenURL{tok: tok, url: c.url + "?access_token=" + url.QueryEscape(tok.Reveal()) + c.query}
	c.lastURL.Store(u)
	return u.url
}

// send sends req. The http.Client adds nothing a request here needs when
// it has no cookie jar (redirects are never followed and the timeout is on
// the context), so the request goes to its transport directly, sparing the
// copies of the header and the redirect bookkeeping net/http's Client.Do
// makes for every request. Errors are *url.Error, as Do's are.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	if c.rt == nil {
		return c.hc.Do(req)
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: "Post", URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// readAnswer reads at most maxAnswerSize of resp's body, then drains a
// bounded rest and closes it so the connection can be reused (net/http
// reuses it only once the body's end was read).
func readAnswer(resp *http.Response) ([]byte, int, error) {
	defer func() { _ = resp.Body.Close() }()
	// A buffer of the size the answer announces, and the byte that finds
	// its end: io.ReadAll started at 512 bytes for answers of a few dozen
	// and, with its LimitReaders, cost three allocations on every call.
	size := 512
	if cl := resp.ContentLength; cl >= 0 && cl < maxAnswerSize {
		size = int(cl) + 1
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := resp.Body.Read(b[len(b):min(cap(b), maxAnswerSize)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, resp.StatusCode, nil
		}
		if err != nil {
			return nil, resp.StatusCode, fmt.Errorf("reading the answer (HTTP %d): %w", resp.StatusCode, err)
		}
		if len(b) == maxAnswerSize {
			_, _ = io.CopyN(io.Discard, resp.Body, maxAnswerSize)
			return b, resp.StatusCode, nil
		}
	}
}

// decodeJSON decodes an answer body, which must be a JSON object: every
// answer of WeChat's is one, and anything else (null, an array, a string,
// which json.Unmarshal would take into a struct without complaint or
// leave it zero) is something in between talking, not WeChat. The error
// names the size but never quotes the body, which could echo anything.
func decodeJSON(b []byte, v any) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("answer is not a JSON object (%d bytes)", len(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("answer is not JSON (%d bytes): %w", len(b), err)
	}
	return nil
}
