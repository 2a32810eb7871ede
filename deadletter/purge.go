package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/keyorder"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// Purge removes the dead letters f selects and returns how many. With no
// criterion, or a waybill alone, it is one stream purge (by subject for a
// waybill) up to the last record at the start, unreadable records
// included, and the count is the server's count at that moment. Otherwise
// it reads headers and deletes the matching records one by one
// (StoreConfig.Concurrency at once); the first failing delete stops it and
// n counts what was removed. Records written after Purge began are kept.
func (s *Store) Purge(ctx context.Context, f Filter) (n int, err error) {
	snap, err := s.snapshot(ctx, f)
	if err != nil || snap.empty {
		return 0, err
	}
	defer func() {
		s.log.Info().Str("filter", f.String()).Int("removed", n).Err(err).Msg("dead-letter purge")
	}()
	if f.onlyWaybill() {
		opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSequence(snap.last + 1)} // up to and including last
		if f.Waybill != "" {
			opts = append(opts, jetstream.WithPurgeSubject(f.subject()))
		}
		if err := snap.stream.Purge(ctx, opts...); err != nil {
			return 0, fmt.Errorf("purge %s (%s): %w", pathupdate.DeadLetterStream, f, err)
		}
		return int(snap.onSubject), nil
	}

	// Record by record: deletes need no order, so every record is its own
	// key; the first failure holds back the deletes not yet begun.
	run, err := keyorder.New(keyorder.Config{Concurrency: s.cfg.Concurrency, HaltOnFailure: true})
	if err != nil {
		return 0, err // cannot happen: StoreConfig.Validate checked Concurrency
	}
	var removed atomic.Int64
	err = s.scan(ctx, snap, f, true, func(r Record) error {
		if err := run.Failed(); err != nil {
			return err // reported below, from Wait
		}
		seq := r.Seq
		return run.Go(ctx, strconv.FormatUint(seq, 10), keyorder.Task{Run: func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			dctx, dcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			gone, err := s.remove(dctx, snap.stream, seq)
			dcancel()
			if err != nil {
				return fmt.Errorf("remove dead letter %d: %w", seq, err)
			}
			if gone { // else removed meanwhile by someone else
				removed.Add(1)
			}
			return nil
		}})
	}, nil)
	if ferr := run.Wait(); ferr != nil {
		err = ferr
	}
	return int(removed.Load()), err
}
