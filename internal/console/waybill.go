package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
)

type waybillData struct {
	ID          string
	Err         string
	NoHistory   bool
	Timeline    history.Timeline
	DeadLetters []deadletter.Record // still in the dead-letter stream
	InStream    map[uint64]bool     // dead-letter seqs still there, for links
}

func (c *Console) waybill(w http.ResponseWriter, r *http.Request, v *view) error {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	v.Title, v.Nav = "Waybill", "waybill"
	d := waybillData{ID: id, InStream: map[uint64]bool{}}
	v.Data = &d
	if id == "" {
		return c.show(w, "waybill", v)
	}
	v.Title = "Waybill " + id
	if !pathupdate.ValidWaybillID(id) {
		d.Err = fmt.Sprintf("%q is not a waybill id: 1 to %d of A-Z a-z 0-9 - _", id, pathupdate.MaxWaybillIDLen)
		c.render(w, http.StatusBadRequest, "waybill", v)
		return nil
	}
	if err := c.ensureIndex(ctx); err != nil && !errors.Is(err, deadletter.ErrNoStream) {
		return err
	}
	d.DeadLetters = c.index.Waybill(id)
	for _, rec := range d.DeadLetters {
		d.InStream[rec.Seq] = true
	}
	tl, err := c.history.Timeline(ctx, id)
	switch {
	case errors.Is(err, history.ErrNoHistory):
		d.NoHistory = true
	case err != nil:
		return err
	}
	for i := range tl.Steps {
		tl.Steps[i].ActionMsg = pathupdate.MaskPhones(tl.Steps[i].ActionMsg)
		tl.Steps[i].ErrMsg = pathupdate.MaskPhones(tl.Steps[i].ErrMsg)
	}
	d.Timeline = tl
	return c.show(w, "waybill", v)
}
