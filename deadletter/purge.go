package deadletter

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		removed int
		first   error
		wg      sync.WaitGroup
	)
	seqs := make(chan uint64, s.cfg.Concurrency)
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for seq := range seqs {
				if ctx.Err() != nil {
					continue
				}
				dctx, dcancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
				gone, err := s.remove(dctx, snap.stream, seq)
				dcancel()
				mu.Lock()
				switch {
				case err == nil && gone:
					removed++
				case err == nil: // removed meanwhile by someone else
				case first == nil:
					first = fmt.Errorf("remove dead letter %d: %w", seq, err)
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	err = s.scan(ctx, snap, f, true, func(r Record) error {
		select {
		case seqs <- r.Seq:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil)
	close(seqs)
	wg.Wait()
	if first != nil {
		err = first
	}
	return removed, err
}
