package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// view is what every page shows besides its own content.
type view struct {
	Title      string
	Nav        string // which tab is current
	CSRF       string
	ReadOnly   bool
	LoggedIn   bool // a login is required and this is a session: offer logout
	Pause      pauseView
	Flash      []string // what an action did, one line each
	FlashError bool
	AutoReload time.Duration // the overview reloads itself this often
	Now        time.Time
	Data       any
}

type pageFunc func(w http.ResponseWriter, r *http.Request, v *view) error

// page wraps a GET handler: a session is required (a login when the
// console has a token; issued on the spot when it has none).
func (c *Console) page(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		csrf, err := c.sessions.check(r)
		if err != nil {
			if c.sessions.loginRequired() {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			if csrf, err = c.sessions.issue(w); err != nil {
				c.fail(w, r, http.StatusInternalServerError, err)
				return
			}
		}
		c.serve(w, r, h, csrf)
	})
}

// action wraps a POST handler: a valid session, a same-origin request
// (net/http's CrossOriginProtection: Sec-Fetch-Site, else Origin against
// Host) and the session's CSRF token in the form are all required, and
// when changes is true a read-only console refuses it.
func (c *Console) action(h pageFunc, changes bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.origin.Check(r); err != nil {
			c.refuse(w, r, "cross-origin request refused: actions are taken only from the console's own pages")
			return
		}
		csrf, err := c.sessions.check(r)
		if err != nil {
			c.refuse(w, r, "no valid session: log in again (or reload the page) and repeat the action")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if !csrfOK(r, csrf) {
			c.refuse(w, r, "the form's CSRF token is missing or not this session's: reload the page and repeat the action")
			return
		}
		if changes && c.cfg.ReadOnly {
			c.refuse(w, r, "this console is read-only (--console-read-only): it takes no action")
			return
		}
		c.serve(w, r, h, csrf)
	})
}

func (c *Console) serve(w http.ResponseWriter, r *http.Request, h pageFunc, csrf string) {
	v := &view{CSRF: csrf, ReadOnly: c.cfg.ReadOnly, LoggedIn: c.sessions.loginRequired(), Now: c.cfg.Now().UTC()}
	v.Pause = c.readPause(r.Context())
	if r.Method == http.MethodGet {
		v.Flash, v.FlashError = takeFlash(w, r)
	}
	if err := h(w, r, v); err != nil {
		var bad badInput
		if errors.As(err, &bad) {
			c.fail(w, r, http.StatusBadRequest, err)
			return
		}
		c.fail(w, r, http.StatusInternalServerError, err)
	}
}

// flashCookie carries what an action did to the page it redirects to.
const flashCookie = "pathupdate_flash"

type flash struct {
	Lines []string `json:"l"`
	Err   bool     `json:"e,omitempty"`
}

// setFlash keeps lines for the next page (a minute at most). They hold
// no secret: they are what the page would have shown.
func setFlash(w http.ResponseWriter, lines []string, isErr bool) {
	b, err := json.Marshal(flash{Lines: lines, Err: isErr})
	if err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// takeFlash reads and clears the lines setFlash kept.
func takeFlash(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil, false
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	var f flash
	if err != nil || json.Unmarshal(b, &f) != nil {
		return nil, false
	}
	return f.Lines, f.Err
}

// badInput is an error in what the operator asked for, shown as it is.
type badInput struct{ error }

func (c *Console) refuse(w http.ResponseWriter, r *http.Request, why string) {
	c.cfg.Logger.Warn().Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("console: refused: " + why)
	c.render(w, http.StatusForbidden, "error", &view{Title: "Refused", ReadOnly: c.cfg.ReadOnly, Now: c.cfg.Now().UTC(),
		Flash: []string{why}, FlashError: true})
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	text := pathupdate.MaskPhones(err.Error())
	if status >= 500 {
		c.cfg.Logger.Error().Str("path", r.URL.Path).Str("error", text).Msg("console: page failed")
	}
	c.render(w, status, "error", &view{Title: http.StatusText(status), ReadOnly: c.cfg.ReadOnly, Now: c.cfg.Now().UTC(),
		Flash: []string{text}, FlashError: true})
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.cfg.Logger.Error().Err(err).Str("page", name).Msg("console: template failed")
		http.Error(w, "the console could not render this page: see its log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) show(w http.ResponseWriter, name string, v *view) error {
	c.render(w, http.StatusOK, name, v)
	return nil
}

// pageNames are the pages; each is parsed with layout.html.
var pageNames = []string{"overview", "deadletters", "deadletter", "preview", "result", "waybill", "login", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"time":      timeText,
		"ago":       agoText,
		"unix":      func(s int64) string { return timeText(time.Unix(s, 0)) },
		"action":    func(t int) string { return pathupdate.ActionType(t).String() },
		"mask":      pathupdate.MaskPhones,
		"query":     func(vals ...string) template.URL { return queryURL(vals...) },
		"bytes":     bytesText,
		"add":       func(a, b int) int { return a + b },
		"bar":       barHeight,
		"mul10":     func(i int) int { return i * 10 },
		"sub40":     func(h int) int { return 45 - h },
		"join":      strings.Join,
		"itoa":      strconv.Itoa,
		"utoa":      func(u uint64) string { return strconv.FormatUint(u, 10) },
		"seconds":   func(d time.Duration) int { return int(d / time.Second) },
		"millis":    func(d time.Duration) int64 { return d.Milliseconds() },
		"max1":      func(n int) int { return max(n, 1) },
		"nonzero":   func(t time.Time) bool { return !t.IsZero() },
		"hasPrefix": strings.HasPrefix,
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func agoText(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// barHeight scales v of most to a bar of at most 40 pixels.
func barHeight(v, most uint64) int {
	if most == 0 {
		return 0
	}
	return int(v * 40 / most)
}

// queryURL builds "?k=v&..." from pairs, leaving out empty values.
func queryURL(pairs ...string) template.URL {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return template.URL("?" + q.Encode())
}

// tokenField finds a token's value in raw event text, to hide it.
var tokenField = regexp.MustCompile(`("token"\s*:\s*")([^"\\]|\\.)*(")`)

// hideTokens masks every "token" value and phone number in raw text.
func hideTokens(raw string) string {
	return pathupdate.MaskPhones(tokenField.ReplaceAllString(raw, `${1}(hidden)${3}`))
}

// ctxTimeout bounds the reads of one page.
func ctxTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
