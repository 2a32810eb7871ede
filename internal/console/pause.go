package console

import (
	"context"
	"net/http"
	"time"
)

// pauseView is whether delivery is paused, for the banner of every page.
type pauseView struct {
	Paused       bool
	Until        time.Time // zero with UntilResumed
	UntilResumed bool
	Err          string // the state could not be read
}

func (c *Console) readPause(ctx context.Context) pauseView {
	_ = ctx
	return pauseView{}
}

func (c *Console) pause(w http.ResponseWriter, r *http.Request, v *view) error {
	return nil
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request, v *view) error {
	return nil
}
