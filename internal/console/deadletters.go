package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// filterForm is a dead-letter filter as the operator typed it, kept to
// fill the form again and to build links.
type filterForm struct {
	Waybill, ErrCode, Reason, Since string
}

func (f filterForm) query(extra ...string) string {
	return string(queryURL(append([]string{"waybill", f.Waybill, "errcode", f.ErrCode, "reason", f.Reason, "since", f.Since}, extra...)...))
}

// Query is the filter as a query string ("" for none), for links.
func (f filterForm) Query() string { return f.query() }

// Empty reports whether nothing is filtered.
func (f filterForm) Empty() bool { return f == filterForm{} }

// readFilter reads a filter from a form or query; errors name the field
// and say what to type.
func (c *Console) readFilter(vals url.Values) (filterForm, deadletter.Filter, error) {
	ff := filterForm{
		Waybill: strings.TrimSpace(vals.Get("waybill")),
		ErrCode: strings.TrimSpace(vals.Get("errcode")),
		Reason:  strings.TrimSpace(vals.Get("reason")),
		Since:   strings.TrimSpace(vals.Get("since")),
	}
	var f deadletter.Filter
	var errs []error
	f.Waybill = ff.Waybill
	if ff.ErrCode != "" {
		code, err := deadletter.ParseErrCode(ff.ErrCode)
		if err != nil {
			errs = append(errs, err)
		}
		f.ErrCode = &code
	}
	if ff.Reason != "" {
		reason, err := deadletter.ParseReason(ff.Reason)
		if err != nil {
			errs = append(errs, err)
		}
		f.Reason = reason
	}
	if ff.Since != "" {
		since, err := deadletter.ParseSince(ff.Since, c.cfg.Now())
		if err != nil {
			errs = append(errs, err)
		}
		f.Since = since
	}
	if len(errs) == 0 {
		if err := f.Validate(); err != nil {
			errs = append(errs, errors.New(strings.Replace(err.Error(), "Filter.Waybill", "waybill", 1)))
		}
	}
	return ff, f, errors.Join(errs...)
}

type deadLettersData struct {
	Filter   filterForm
	Err      string
	Page     deadletter.Page
	Rows     []row
	Reasons  []countRow
	ErrCodes []countRow
	From     uint64
	Waybills int
	Reasons0 []string // every reason, for the form's choice
	// Links to the first, previous and next pages ("" for none).
	FirstURL, PrevURL, NextURL string
}

// row is one dead letter in a list.
type row struct {
	deadletter.Record
	Label string // errcode with its meaning
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request, v *view) error {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	v.Title, v.Nav = "Dead letters", "deadletters"
	q := r.URL.Query()
	ff, f, err := c.readFilter(q)
	d := deadLettersData{Filter: ff, Reasons0: deadletter.Reasons()}
	if err != nil {
		d.Err = err.Error()
		v.Data = d
		c.render(w, http.StatusBadRequest, "deadletters", v)
		return nil
	}
	if from := q.Get("from"); from != "" {
		if d.From, err = strconv.ParseUint(from, 10, 64); err != nil {
			return badInput{fmt.Errorf("from %q is not a dead-letter sequence: follow the page links", from)}
		}
	}
	if err := c.ensureIndex(ctx); err != nil && !errors.Is(err, deadletter.ErrNoStream) {
		return err
	}
	f.FromSeq = d.From
	d.Page = c.index.Page(f, c.cfg.PageSize)
	d.Waybills = len(d.Page.Waybills)
	for _, rec := range d.Page.Records {
		d.Rows = append(d.Rows, row{Record: rec, Label: errcodeLabel(rec.ErrCode)})
	}
	d.Reasons, d.ErrCodes = countRows(d.Page.Stats.ByReason, d.Page.Stats.ByErrCode)
	if d.From != 0 {
		d.FirstURL = "/deadletters" + ff.query()
		d.PrevURL = d.FirstURL
	}
	if d.Page.Prev != 0 {
		d.PrevURL = "/deadletters" + ff.query("from", strconv.FormatUint(d.Page.Prev, 10))
	}
	if d.Page.Next != 0 {
		d.NextURL = "/deadletters" + ff.query("from", strconv.FormatUint(d.Page.Next, 10))
	}
	for i := range d.Reasons {
		d.Reasons[i].Filter = filterForm{Waybill: ff.Waybill, ErrCode: ff.ErrCode, Reason: d.Reasons[i].Label, Since: ff.Since}.query()
	}
	for i := range d.ErrCodes {
		code := strings.Fields(d.ErrCodes[i].Label)[0]
		d.ErrCodes[i].Filter = filterForm{Waybill: ff.Waybill, ErrCode: code, Reason: ff.Reason, Since: ff.Since}.query()
	}
	v.Data = d
	return c.show(w, "deadletters", v)
}

type deadLetterData struct {
	Record   deadletter.Record
	Label    string
	Event    *pathupdate.Event // nil when the stored bytes are not an event
	EventErr string
	Raw      string // the stored bytes, tokens hidden and phones masked
	Token    string // the event's token when revealed, else its hidden form
	Revealed bool
	Others   int // the waybill's other dead letters
}

func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request, v *view) error {
	return c.showDeadLetter(w, r, v, false)
}

// reveal shows a dead letter with its token (a POST, so the token is
// never in a URL, a cache or a browser history; logged without it).
func (c *Console) reveal(w http.ResponseWriter, r *http.Request, v *view) error {
	return c.showDeadLetter(w, r, v, true)
}

func (c *Console) showDeadLetter(w http.ResponseWriter, r *http.Request, v *view, reveal bool) error {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return badInput{fmt.Errorf("%q is not a dead-letter sequence (a whole number from 1)", r.PathValue("seq"))}
	}
	rec, err := c.store.Get(ctx, seq)
	if errors.Is(err, deadletter.ErrNotFound) {
		c.render(w, http.StatusNotFound, "error", &view{Title: "Not found", Now: v.Now, Pause: v.Pause, ReadOnly: v.ReadOnly, LoggedIn: v.LoggedIn, CSRF: v.CSRF,
			Flash: []string{err.Error()}, FlashError: true})
		return nil
	}
	if err != nil {
		return err
	}
	v.Title, v.Nav = fmt.Sprintf("Dead letter %d", seq), "deadletters"
	d := deadLetterData{Record: rec, Label: errcodeLabel(rec.ErrCode), Raw: hideTokens(string(rec.Event)), Revealed: reveal}
	if ev, err := pathupdate.DecodeEvent(rec.Event); err == nil {
		ev.ActionMsg = pathupdate.MaskPhones(ev.ActionMsg)
		d.Token = hiddenToken(ev.Token)
		if reveal {
			d.Token = ev.Token
			c.cfg.Logger.Info().Uint64("seq", seq).Str("waybill_id", rec.WaybillID).Str("remote", r.RemoteAddr).Msg("console: operator revealed a dead letter's waybill token")
		}
		ev.Token = ""
		d.Event = &ev
	} else {
		d.EventErr = pathupdate.MaskPhones(err.Error())
	}
	if rec.WaybillID != "" {
		d.Others = max(0, len(c.index.Waybill(rec.WaybillID))-1)
	}
	v.Data = d
	return c.show(w, "deadletter", v)
}

// hiddenToken says a token is there without giving it: its length and
// last four characters, as the delivery history keeps it.
func hiddenToken(token string) string {
	if token == "" {
		return "(none)"
	}
	tail := token
	if len(tail) > 4 {
		tail = tail[len(tail)-4:]
	}
	return fmt.Sprintf("hidden (%d characters, ending …%s)", len(token), tail)
}

// errcodeLabel is an errcode with what it means to an operator.
func errcodeLabel(code int) string {
	switch code {
	case 0:
		return "0 (none)"
	case pathupdate.ErrcodeWaybillNotFound:
		return "40199 (waybill not found)"
	case pathupdate.ErrcodeIncorrectToken:
		return "9300507 (incorrect token)"
	case pathupdate.ErrcodeSystemError:
		return "-1 (system error)"
	}
	return strconv.Itoa(code)
}

func itoa(i int) string { return strconv.Itoa(i) }
