package console

import (
	"net/http"
	"strings"
)

type loginData struct {
	Next  string
	Wrong bool
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.sessions.loginRequired() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", &view{Title: "Log in", Now: c.cfg.Now().UTC(), Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// login checks the token and starts a session. It passes the
// cross-origin check like every POST; it needs no CSRF token, as there is
// no session yet to bind one to.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := c.origin.Check(r); err != nil {
		c.refuse(w, r, "cross-origin login refused")
		return
	}
	if !c.sessions.loginRequired() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := safeNext(r.PostFormValue("next"))
	if !c.sessions.tokenMatches(r.PostFormValue("token")) {
		c.cfg.Logger.Warn().Str("remote", r.RemoteAddr).Msg("console: login refused: wrong token")
		c.render(w, http.StatusUnauthorized, "login", &view{Title: "Log in", Now: c.cfg.Now().UTC(), Data: loginData{Next: next, Wrong: true}})
		return
	}
	if _, err := c.sessions.issue(w); err != nil {
		c.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	c.cfg.Logger.Info().Str("remote", r.RemoteAddr).Msg("console: operator logged in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *view) error {
	c.sessions.end(w)
	target := "/login"
	if !c.sessions.loginRequired() {
		target = "/"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// safeNext keeps a redirect after login on this console: a path, never
// another site ("//evil", "https://...", "/\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
