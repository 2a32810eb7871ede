package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Handler serves POST /v1/events (see the package doc). It is safe for
// concurrent use. Mount it on the path Path; it answers 405 to any method
// but POST itself.
type Handler struct {
	pub       *pathupdate.Publisher
	cfg       Config
	log       zerolog.Logger
	auth      bool
	tokenHash [sha256.Size]byte
	tracer    trace.Tracer // nil: tracing off (tracing.go)
}

// NewHandler returns a Handler publishing through pub, a Publisher the
// caller owns, with cfg (after WithDefaults).
func NewHandler(pub *pathupdate.Publisher, cfg Config) (*Handler, error) {
	if pub == nil {
		return nil, errors.New("gateway.NewHandler: nil *pathupdate.Publisher")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{pub: pub, cfg: cfg, log: cfg.Logger, tracer: pathupdate.TracerOf(cfg.TracerProvider)}
	if cfg.Token != "" {
		h.auth = true
		// Comparing fixed-size hashes keeps the comparison constant-time
		// whatever the length of the presented token.
		h.tokenHash = sha256.Sum256([]byte(cfg.Token.Reveal()))
	}
	return h, nil
}

// requestError refuses a request as a whole: nothing is published.
type requestError struct {
	code int
	msg  string
}

func refuse(code int, format string, args ...any) *requestError {
	return &requestError{code: code, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r, span := h.traceRequest(r)
	resp, rerr := h.serve(w, r)
	if rerr != nil {
		endRequest(span, rerr.code)
		switch rerr.code {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", wwwAuthenticate(r))
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", http.MethodPost)
		}
		writeJSON(w, rerr.code, ErrorResponse{Error: rerr.msg})
		// The refusal can quote the body (a JSON syntax error): mask.
		h.logRequest(r, rerr.code, start, nil).Str("error", pathupdate.MaskPhones(rerr.msg)).Msg("gateway request refused")
		return
	}
	code := resp.statusCode()
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(h.cfg.RetryAfter/time.Second)))
	}
	writeJSON(w, code, resp)
	endRequest(span, code)
	h.logRequest(r, code, start, resp).Msg("gateway request")
}

// serve checks the request and publishes its events. It returns either a
// Response or a refusal.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (*Response, *requestError) {
	if r.Method != http.MethodPost {
		return nil, refuse(http.StatusMethodNotAllowed, "method %s: use POST", r.Method)
	}
	if rerr := h.authorize(r); rerr != nil {
		return nil, rerr
	}
	if rerr := checkContentType(r.Header.Get("Content-Type")); rerr != nil {
		return nil, rerr
	}
	body, rerr := h.readBody(w, r)
	if rerr != nil {
		return nil, rerr
	}
	items, results, rerr := parseBody(body, h.cfg.MaxEvents, r.Header.Get("Idempotency-Key"))
	if rerr != nil {
		return nil, rerr
	}
	resp := &Response{Results: results}
	resp.cause = h.publish(r.Context(), items, results)
	resp.count()
	if resp.Failed > 0 {
		what := fmt.Sprintf("%d events were", resp.Failed)
		if resp.Failed == 1 {
			what = "1 event was"
		}
		resp.Error = fmt.Sprintf("%s not published: %v; send the events marked failed again after Retry-After "+
			"(an event sent again with the same msg_id is stored once)", what, resp.cause)
	}
	return resp, nil
}

// authorize checks the bearer token (RFC 6750) in constant time.
func (h *Handler) authorize(r *http.Request) *requestError {
	if !h.auth {
		return nil
	}
	v := r.Header.Get("Authorization")
	if v == "" {
		return refuse(http.StatusUnauthorized, "missing bearer token: send the header Authorization: Bearer <token>")
	}
	scheme, tok, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return refuse(http.StatusUnauthorized, "the Authorization header is not a bearer token: send Authorization: Bearer <token>")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) != 1 {
		return refuse(http.StatusUnauthorized, "the bearer token is not the gateway's token")
	}
	return nil
}

// wwwAuthenticate is the challenge of a 401: RFC 6750 leaves out the error
// attribute when the request carried no credentials at all.
func wwwAuthenticate(r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		return `Bearer realm="pathupdate"`
	}
	return `Bearer realm="pathupdate", error="invalid_token"`
}

// checkContentType accepts application/json, with no charset or UTF-8
// (RFC 8259: JSON between systems is UTF-8).
func checkContentType(ct string) *requestError {
	if ct == "" {
		return refuse(http.StatusUnsupportedMediaType, "missing Content-Type: send Content-Type: application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return refuse(http.StatusUnsupportedMediaType, "Content-Type %q: send application/json", clip(ct, 100))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return refuse(http.StatusUnsupportedMediaType, "Content-Type charset %q: send UTF-8 JSON as application/json (charset=utf-8 or none)", clip(cs, 40))
	}
	return nil
}

// readBody reads at most MaxBodyBytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	limit := h.cfg.MaxBodyBytes
	tooLarge := func() *requestError {
		return refuse(http.StatusRequestEntityTooLarge, "body larger than %d bytes: split the events over several requests", limit)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge()
	}
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

// logRequest starts the one log line of a request: debug when every event
// was stored, info when the producer sent something wrong (a refusal or
// invalid events), warn while events cannot be published. Headers are
// never logged: one of them is the token.
func (h *Handler) logRequest(r *http.Request, code int, start time.Time, resp *Response) *zerolog.Event {
	var ev *zerolog.Event
	switch {
	case code >= 500:
		ev = h.log.Warn()
	case code >= 400 || code == http.StatusMultiStatus:
		ev = h.log.Info()
	default:
		ev = h.log.Debug()
	}
	ev = ev.Str("remote", r.RemoteAddr).Str("method", r.Method).Int("status", code).Dur("took", time.Since(start))
	if id := pathupdate.TraceIDOf(r.Context()); id != "" {
		ev = ev.Str("trace_id", id)
	}
	if resp != nil {
		ev = ev.Int("events", len(resp.Results)).Int("accepted", resp.Accepted).Int("duplicates", resp.Duplicates).
			Int("invalid", resp.Invalid).Int("failed", resp.Failed)
		if resp.cause != nil {
			ev = ev.AnErr("cause", pathupdate.MaskPhonesError(resp.cause))
		}
	}
	return ev
}

// clip keeps echoed header values short.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
