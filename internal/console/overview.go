package console

import (
	"context"
	"net/http"
	"slices"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/status"
)

type overviewData struct {
	Report   status.Report
	Minutes  []minuteCount
	Most     uint64 // the highest minute, to scale the chart
	LastMin  minuteCount
	Reasons  []countRow
	ErrCodes []countRow
	Lag      uint64
	Err      string // the report could not be read whole
}

// countRow is one line of a count table, with the filter it links to.
type countRow struct {
	Label  string
	Count  int
	Filter string // query of /deadletters
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, v *view) error {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	v.Title, v.Nav, v.AutoReload = "Overview", "overview", c.cfg.Refresh
	d := overviewData{}
	rep, err := status.GatherWith(ctx, c.js, c.cfg.Consumer, status.Options{DeadLetters: func(ctx context.Context) (deadletter.Stats, error) {
		if err := c.ensureIndex(ctx); err != nil {
			return deadletter.Stats{}, err
		}
		return c.index.Page(deadletter.Filter{}, 0).Stats, nil
	}})
	if err != nil {
		d.Err = err.Error()
	}
	d.Report = rep
	for _, p := range rep.Partitions {
		d.Lag += p.Pending + uint64(p.AckPending)
	}
	d.Minutes = c.rates.series(v.Now)
	for _, m := range d.Minutes {
		d.Most = max(d.Most, m.Delivered, m.DeadLettered)
	}
	if n := len(d.Minutes); n > 1 {
		d.LastMin = d.Minutes[n-2] // the last whole minute
	}
	d.Reasons, d.ErrCodes = countRows(rep.DeadLetters.ByReason, rep.DeadLetters.ByErrCode)
	v.Data = d
	return c.show(w, "overview", v)
}

// countRows turns counts into rows, largest first, each linking to its
// filter.
func countRows(byReason map[string]int, byErrCode map[int]int) (reasons, errcodes []countRow) {
	for reason, n := range byReason {
		reasons = append(reasons, countRow{Label: reason, Count: n, Filter: string(queryURL("reason", reason))})
	}
	for code, n := range byErrCode {
		label := errcodeLabel(code)
		errcodes = append(errcodes, countRow{Label: label, Count: n, Filter: string(queryURL("errcode", itoa(code)))})
	}
	byCount := func(a, b countRow) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if a.Label < b.Label {
			return -1
		}
		return 1
	}
	slices.SortFunc(reasons, byCount)
	slices.SortFunc(errcodes, byCount)
	return reasons, errcodes
}
