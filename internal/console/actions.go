package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
)

// Preview limits: a preview names this many waybills and lists this many
// dead letters; the counts are always whole.
const (
	previewWaybills = 200
	previewRecords  = 50
	resultSkipped   = 20
)

// target is what an action applies to, read from its form. Scope is
// "one" (seq), "selection" (every ticked seq), "filter" (the filter
// fields) or "waybill" (one waybill's dead letters, optionally with a new
// token).
type target struct {
	Scope   string
	Seqs    []uint64
	Filter  filterForm
	Waybill string
	f       deadletter.Filter
}

// Hidden is the form's fields again, for the confirm button of a
// preview.
func (t target) Hidden() []field {
	out := []field{{"scope", t.Scope}}
	for _, q := range t.Seqs {
		out = append(out, field{"seq", strconv.FormatUint(q, 10)})
	}
	for _, kv := range [][2]string{{"waybill", t.Filter.Waybill}, {"errcode", t.Filter.ErrCode}, {"reason", t.Filter.Reason}, {"since", t.Filter.Since}} {
		if kv[1] != "" {
			out = append(out, field{kv[0], kv[1]})
		}
	}
	return out
}

// Describe says in words what the target selects.
func (t target) Describe() string {
	switch t.Scope {
	case "one":
		return "dead letter " + strconv.FormatUint(t.Seqs[0], 10)
	case "selection":
		return fmt.Sprintf("the %d selected dead letters", len(t.Seqs))
	case "waybill":
		return "the dead letters of waybill " + t.Waybill
	}
	if t.Filter.Empty() {
		return "all dead letters"
	}
	return "the dead letters where " + t.f.String()
}

type field struct{ Name, Value string }

func (c *Console) readTarget(r *http.Request) (target, error) {
	form := r.PostForm
	t := target{Scope: form.Get("scope")}
	switch t.Scope {
	case "one", "selection":
		for _, s := range form["seq"] {
			q, err := strconv.ParseUint(s, 10, 64)
			if err != nil || q == 0 {
				return t, badInput{fmt.Errorf("seq %q is not a dead-letter sequence", s)}
			}
			t.Seqs = append(t.Seqs, q)
		}
		if len(t.Seqs) == 0 {
			return t, badInput{errors.New("no dead letter selected: tick the boxes of the ones to act on, or act on the whole filter")}
		}
		if t.Scope == "one" && len(t.Seqs) != 1 {
			return t, badInput{errors.New("one dead letter expected")}
		}
		t.f = deadletter.Filter{Seqs: t.Seqs}
	case "filter":
		ff, f, err := c.readFilter(form)
		if err != nil {
			return t, badInput{err}
		}
		t.Filter, t.f = ff, f
	case "waybill":
		t.Waybill = strings.TrimSpace(form.Get("waybill"))
		t.Filter = filterForm{Waybill: t.Waybill}
		t.f = deadletter.Filter{Waybill: t.Waybill}
		if err := t.f.Validate(); err != nil || t.Waybill == "" {
			return t, badInput{fmt.Errorf("waybill %q is not a waybill id", t.Waybill)}
		}
	default:
		return t, badInput{fmt.Errorf("scope %q: use one, selection, filter or waybill", t.Scope)}
	}
	return t, nil
}

type previewData struct {
	Action   string // "replay" or "purge"
	Target   target
	Count    int
	Skipped  int
	Invalid  int
	Waybills []string
	More     int // waybills not named
	Records  []deadletter.Record
}

type resultData struct {
	Back     string // where to go next
	Lines    []string
	Waybills []string
	Err      string
}

// replay previews (a dry run) or, with confirm, replays what the form
// selects; with scope "waybill" and a new token, it replays that
// waybill's dead letters with the token (no preview: the form said how
// many).
func (c *Console) replay(w http.ResponseWriter, r *http.Request, v *view) error {
	t, err := c.readTarget(r)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(r.PostFormValue("set_token"))
	if token != "" && t.Scope != "waybill" {
		return badInput{errors.New("a new token applies to one waybill: set it from that waybill's dead letter")}
	}
	opts := deadletter.ReplayOptions{SetToken: token, DryRun: r.PostFormValue("confirm") != "1" && token == ""}
	ctx := context.WithoutCancel(r.Context()) // a replay begun is finished, whatever the browser does
	hist := history.OpenOperator(ctx, c.js, c.cfg.Logger, c.cfg.Now)
	defer hist.Close()

	var mu sync.Mutex
	var skipped []string
	var replayed []uint64
	pd := previewData{Action: "replay", Target: t}
	seenWaybill := map[string]bool{}
	opts.Progress = func(p deadletter.ReplayProgress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Skipped != nil {
			if len(skipped) < resultSkipped {
				skipped = append(skipped, fmt.Sprintf("seq %d (waybill %s): %v", p.Record.Seq, p.Record.WaybillID, p.Skipped))
			}
			return
		}
		replayed = append(replayed, p.Record.Seq)
		if w := p.Record.WaybillID; !seenWaybill[w] {
			seenWaybill[w] = true
			if len(pd.Waybills) < previewWaybills {
				pd.Waybills = append(pd.Waybills, w)
			} else {
				pd.More++
			}
		}
		if opts.DryRun && len(pd.Records) < previewRecords {
			rec := p.Record
			rec.Event = nil
			pd.Records = append(pd.Records, rec)
		}
		if !opts.DryRun {
			hist.Replayed(p)
		}
	}
	res, err := c.store.Replay(ctx, t.f, opts)
	if opts.DryRun {
		if err != nil {
			return err
		}
		pd.Count, pd.Skipped, pd.Invalid = res.Replayed, res.Skipped, res.SkippedInvalid
		v.Title, v.Nav = "Replay: preview", "deadletters"
		v.Data = pd
		return c.show(w, "preview", v)
	}
	c.index.Forget(replayed...)
	what := t.Describe()
	if token != "" {
		what += " with the new token"
	}
	c.cfg.Logger.Info().Str("target", what).Int("replayed", res.Replayed).Int("skipped", res.Skipped).Err(err).Msg("console: operator replayed dead letters")
	d := resultData{Back: back(t), Waybills: pd.Waybills}
	d.Lines = append(d.Lines, fmt.Sprintf("Replayed %d of %s (%d %s) in %s: they are back in the trace stream, after what their waybills already had.",
		res.Replayed, what, len(seenWaybill), plural(len(seenWaybill), "waybill", "waybills"), res.Took.Round(1e6)))
	if res.Duplicates > 0 {
		d.Lines = append(d.Lines, fmt.Sprintf("%d of them were already in the trace stream from an interrupted replay: each is stored once.", res.Duplicates))
	}
	if res.Skipped > 0 {
		d.Lines = append(d.Lines, fmt.Sprintf("Skipped %d, left in place:", res.Skipped))
		d.Lines = append(d.Lines, skipped...)
	}
	if err != nil {
		d.Err = "The replay stopped: " + err.Error() + ". What was replayed stays replayed; repeat the action for the rest."
	}
	v.Title, v.Nav, v.Data = "Replay: done", "deadletters", d
	return c.show(w, "result", v)
}

// purge previews (the count) or, with confirm, purges what the form
// selects.
func (c *Console) purge(w http.ResponseWriter, r *http.Request, v *view) error {
	t, err := c.readTarget(r)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	if r.PostFormValue("confirm") != "1" {
		n, err := c.store.Count(ctx, t.f)
		if err != nil {
			return err
		}
		v.Title, v.Nav = "Purge: confirm", "deadletters"
		v.Data = previewData{Action: "purge", Target: t, Count: n}
		return c.show(w, "preview", v)
	}
	hist := history.OpenOperator(ctx, c.js, c.cfg.Logger, c.cfg.Now)
	defer hist.Close()
	doomed, err := hist.BeforePurge(ctx, c.store, t.f)
	if err != nil {
		return err
	}
	n, err := c.store.Purge(ctx, t.f)
	hist.Purged(ctx, c.store, doomed)
	c.cfg.Logger.Info().Str("target", t.Describe()).Int("purged", n).Err(err).Msg("console: operator purged dead letters")
	d := resultData{Back: back(t), Lines: []string{fmt.Sprintf("Purged %d of %s: removed for good, their events will not be delivered.", n, t.Describe())}}
	if expect, perr := strconv.Atoi(r.PostFormValue("expect")); perr == nil && expect != n {
		d.Lines = append(d.Lines, fmt.Sprintf("You confirmed %d: the difference arrived or was removed meanwhile (records that arrived after the purge began are kept).", expect))
	}
	if err != nil {
		d.Err = "The purge stopped: " + err.Error() + ". What was removed stays removed."
	}
	if rerr := c.index.Refresh(ctx); rerr != nil {
		c.cfg.Logger.Warn().Err(rerr).Msg("console: refresh after purge")
	}
	v.Title, v.Nav, v.Data = "Purge: done", "deadletters", d
	return c.show(w, "result", v)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// back is where a result page's "back" link goes.
func back(t target) string {
	if t.Scope == "waybill" {
		return "/waybill?id=" + url.QueryEscape(t.Waybill)
	}
	return "/deadletters" + t.Filter.Query()
}
