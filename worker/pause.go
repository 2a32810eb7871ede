package worker

import (
	"context"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
)

// An operator pauses delivery of the whole deployment with package pause
// (`pathupdate pause`, the console): JetStream then hands no message of a
// paused consumer to any worker. The worker's part is to know it, and to
// keep every consumer in line with the recorded pause: a consumer it
// creates while a pause stands is created paused, and one that a Pause or
// Resume cut short left behind is put right. What the worker held when
// the pause came waits too (waitOperatorPause), kept alive, so delivery
// stops at once and not after up to MaxInFlight more events a partition;
// only calls already in progress finish.

// pauseResync is how often a worker reads the pause record again and
// checks every consumer against it, besides following its changes: it
// covers a watch lost with its connection and two operators racing.
const pauseResync = 30 * time.Second

// pauseTarget is the Target of this worker's deployment.
func (w *Worker) pauseTarget() pause.Target {
	return pause.Target{Stream: pathupdate.TraceStream, Consumer: w.cfg.Consumer, Partitions: w.partitions}
}

// followPause starts following the pause record: the current one is known
// when it returns.
func (w *Worker) followPause(ctx context.Context) error {
	if w.pauseWatch != nil {
		return nil
	}
	pw, err := pause.Watch(ctx, w.js, w.pauseTarget(), w.notePause)
	if err != nil {
		return err
	}
	w.pauseWatch = pw
	w.pausing.Add(1)
	go w.keepPause()
	return nil
}

// notePause records a version of the pause record and has keepPause
// apply it.
func (w *Worker) notePause(r pause.Record) {
	w.mu.Lock()
	old := w.operatorPause
	w.operatorPause = r
	close(w.pauseMoved) // wakes waitOperatorPause
	w.pauseMoved = make(chan struct{})
	w.mu.Unlock()
	now := w.cfg.Now()
	switch {
	case r.Equal(old):
	case r.Active(now):
		w.log.Warn().Time("since", r.At).Str("pause", r.String(now)).Msg("delivery paused by an operator: no event is delivered until `pathupdate resume` or the pause's end")
	case old.Active(now):
		w.log.Info().Msg("delivery resumed by an operator")
	}
	select {
	case w.pauseChanged <- struct{}{}:
	default:
	}
}

// keepPause applies the pause record to every consumer of the deployment
// after each change and every pauseResync, until the worker stops.
func (w *Worker) keepPause() {
	defer w.pausing.Done()
	t := time.NewTicker(pauseResync)
	defer t.Stop()
	for {
		resync := false
		select {
		case <-w.loopCtx.Done():
			return
		case <-w.pauseChanged:
		case <-t.C:
			resync = true
		}
		ctx, cancel := context.WithTimeout(w.loopCtx, 10*time.Second)
		if resync {
			if r, err := pause.Load(ctx, w.js, w.pauseTarget()); err != nil {
				w.log.Debug().Err(err).Msg("pause record")
			} else {
				w.notePause(r)
			}
		}
		if err := pause.ApplyAll(ctx, w.js, w.pauseTarget(), w.OperatorPause()); err != nil && w.loopCtx.Err() == nil {
			w.log.Warn().Err(err).Msg("operator pause: not every consumer agrees with it yet; trying again")
		}
		cancel()
	}
}

// applyPause makes a consumer the worker has just created or updated
// agree with the pause record: a pause recorded between the worker
// building the consumer's config and the server creating it would
// otherwise miss it.
func (w *Worker) applyPause(ctx context.Context, consumer string) {
	if _, err := pause.Apply(ctx, w.js, pathupdate.TraceStream, consumer, w.OperatorPause()); err != nil {
		w.log.Warn().Err(err).Msg("operator pause: consumer does not agree with it yet; the worker tries again")
	}
}

// waitOperatorPause returns once no operator's pause stands, or with
// ctx's error when ctx ends first.
func (w *Worker) waitOperatorPause(ctx context.Context) error {
	for {
		w.mu.Lock()
		r, moved := w.operatorPause, w.pauseMoved
		w.mu.Unlock()
		now := w.cfg.Now()
		if !r.Active(now) {
			return nil
		}
		wait := r.Until.Sub(now)
		if r.Until.IsZero() {
			wait = pauseResync // woken by moved; the timer only bounds the wait
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-moved:
		case <-t.C:
		}
		t.Stop()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// stopFollowingPause ends following the pause record.
func (w *Worker) stopFollowingPause() {
	if w.pauseWatch != nil {
		w.pauseWatch.Stop()
	}
	w.pausing.Wait()
}

// OperatorPause is the deployment's pause as an operator recorded it
// (package pause), as this worker last learnt it; the zero Record until
// the worker has started. Its Active method tells whether delivery is
// paused now.
func (w *Worker) OperatorPause() pause.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.operatorPause
}
