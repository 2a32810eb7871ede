package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pause"
)

// pauseView is whether delivery is paused, for the banner of every page.
type pauseView struct {
	Paused       bool
	Until        time.Time // zero with UntilResumed
	UntilResumed bool
	Err          string // the state could not be read
}

func viewOf(st pause.State) pauseView {
	return pauseView{Paused: st.Paused, Until: st.Until, UntilResumed: st.UntilResumed}
}

// target is the deployment's pause target; the partition count is read
// from the trace stream each time (a page's reads are cheap next to it).
func (c *Console) pauseTarget(ctx context.Context) (pause.Target, error) {
	t, err := pause.TargetOf(ctx, c.js, c.cfg.Consumer)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return t, deadletter.ErrNoStream
	}
	return t, err
}

// readPause reads the pause record for the banner: the record alone, not
// every consumer (the overview's status report has those).
func (c *Console) readPause(ctx context.Context) pauseView {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t, err := c.pauseTarget(ctx)
	if errors.Is(err, deadletter.ErrNoStream) {
		return pauseView{} // no deployment yet: nothing to pause
	}
	if err != nil {
		return pauseView{Err: err.Error()}
	}
	r, err := pause.Load(ctx, c.js, t)
	if err != nil {
		return pauseView{Err: err.Error()}
	}
	now := c.cfg.Now()
	if !r.Active(now) {
		return pauseView{}
	}
	v := pauseView{Paused: true, Until: r.Until}
	if r.Until.IsZero() {
		v.Until, v.UntilResumed = time.Time{}, true
	}
	return v
}

// pause pauses delivery of every partition: until resumed, for a
// duration ("for") or until a time ("until").
func (c *Console) pause(w http.ResponseWriter, r *http.Request, v *view) error {
	forText, untilText := strings.TrimSpace(r.PostFormValue("for")), strings.TrimSpace(r.PostFormValue("until"))
	now := c.cfg.Now()
	var until time.Time
	switch {
	case forText != "" && untilText != "":
		return badInput{errors.New(`give "for" or "until", not both`)}
	case forText != "":
		d, err := time.ParseDuration(forText)
		if err != nil || d <= 0 {
			return badInput{fmt.Errorf(`for %q: give a positive duration such as 30m or 2h, or leave it empty to pause until resumed`, forText)}
		}
		until = now.Add(d)
	case untilText != "":
		t, err := time.Parse(time.RFC3339, untilText)
		if err != nil {
			return badInput{fmt.Errorf(`until %q: give an RFC 3339 time such as 2026-01-02T15:04:05Z or 2026-01-02T23:00:00+08:00`, untilText)}
		}
		if !t.After(now) {
			return badInput{fmt.Errorf("until %s is not in the future: give a later time", t.UTC().Format(time.RFC3339))}
		}
		until = t
	}
	ctx := context.WithoutCancel(r.Context())
	t, err := c.pauseTarget(ctx)
	if err != nil {
		return err
	}
	st, err := pause.Pause(ctx, c.js, t, until)
	c.cfg.Logger.Info().Str("state", st.String()).Str("remote", r.RemoteAddr).Err(err).Msg("console: operator paused delivery")
	line := fmt.Sprintf("Paused delivery of %d partitions and the unpartitioned consumer %s: events wait in JetStream, nothing is lost; Resume delivery lifts it.",
		t.Partitions, strings.TrimPrefix(st.String(), "paused "))
	return c.afterPause(w, r, v, line, st, err)
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request, v *view) error {
	ctx := context.WithoutCancel(r.Context())
	t, err := c.pauseTarget(ctx)
	if err != nil {
		return err
	}
	st, err := pause.Resume(ctx, c.js, t)
	c.cfg.Logger.Info().Str("remote", r.RemoteAddr).Err(err).Msg("console: operator resumed delivery")
	line := fmt.Sprintf("Resumed delivery of %d partitions: the waiting events are delivered in order.", t.Partitions)
	return c.afterPause(w, r, v, line, st, err)
}

// afterPause goes back to the overview (a redirect, so that reloading
// it does not pause again) with what the pause or resume did.
func (c *Console) afterPause(w http.ResponseWriter, r *http.Request, _ *view, line string, st pause.State, err error) error {
	lines, failed := []string{line}, false
	if err != nil {
		lines = append(lines, "Not every consumer answered: "+err.Error()+". The pause is recorded; running workers put the rest in line within seconds.")
		failed = true
	}
	if n := st.Missing(); n > 0 {
		lines = append(lines, fmt.Sprintf("%d consumers do not exist yet: workers create them as the record says.", n))
	}
	setFlash(w, lines, failed)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
