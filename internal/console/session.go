package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cookie and form names.
const (
	sessionCookie = "pathupdate_console"
	csrfField     = "csrf"
)

// sessions issues and checks the session cookie and the CSRF token.
//
// A session is "<nonce>.<issued unix>.<mac>", the mac an HMAC over nonce
// and time under a key derived from the console token: nothing is kept on
// the server, a login outlives a console restart, and changing the token
// ends every session at once. Without a token (loopback only) the key is
// random per process and a session is issued on the first visit, so that
// forms still carry a CSRF token. The CSRF token is another HMAC of the
// nonce, so it is bound to the session and never stored.
type sessions struct {
	key     []byte
	token   []byte // nil: no login
	maxAge  time.Duration
	now     func() time.Time
	secured bool // set the cookie's Secure flag (served behind TLS)
}

func newSessions(token string, now func() time.Time) (*sessions, error) {
	s := &sessions{maxAge: SessionMaxAge, now: now}
	if token == "" {
		s.key = make([]byte, 32)
		if _, err := rand.Read(s.key); err != nil {
			return nil, err
		}
		return s, nil
	}
	s.token = []byte(token)
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("pathupdate console session key"))
	s.key = m.Sum(nil)
	return s, nil
}

func (s *sessions) loginRequired() bool { return s.token != nil }

// tokenMatches compares in constant time.
func (s *sessions) tokenMatches(given string) bool {
	g := sha256.Sum256([]byte(given))
	w := sha256.Sum256(s.token)
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (s *sessions) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue sets a new session cookie and returns its CSRF token.
func (s *sessions) issue(w http.ResponseWriter) (csrf string, err error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	issued := strconv.FormatInt(s.now().Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    nonce + "." + issued + "." + s.mac("session", nonce, issued),
		Path:     "/",
		MaxAge:   int(s.maxAge / time.Second),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   s.secured,
	})
	return s.mac("csrf", nonce), nil
}

// end clears the session cookie.
func (s *sessions) end(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secured})
}

var errNoSession = errors.New("no valid session")

// check returns the CSRF token of r's session, errNoSession when r has
// none that is valid and current.
func (s *sessions) check(r *http.Request) (csrf string, err error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", errNoSession
	}
	nonce, rest, ok1 := strings.Cut(c.Value, ".")
	issued, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !hmac.Equal([]byte(mac), []byte(s.mac("session", nonce, issued))) {
		return "", errNoSession
	}
	at, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return "", errNoSession
	}
	if age := s.now().Sub(time.Unix(at, 0)); age < -time.Minute || age > s.maxAge {
		return "", errNoSession
	}
	return s.mac("csrf", nonce), nil
}

// csrfOK reports whether the form's CSRF token is the session's.
func csrfOK(r *http.Request, want string) bool {
	got := r.PostFormValue(csrfField)
	return want != "" && hmac.Equal([]byte(got), []byte(want))
}
