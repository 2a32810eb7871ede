package deadletter

import (
	"context"
)

// List calls fn with every dead letter f selects, in stream order, one at a
// time: memory stays at one batch whatever the stream holds, and there is
// no cap. The waybill, FromSeq and Since criteria are applied by the
// server (subject filter, start sequence, start time); errcode and reason
// on each record as it arrives. If fn returns an error, List stops and
// returns it unchanged (a page of N: return a sentinel after N records and
// resume with Filter.FromSeq = last seq + 1). Records written after List
// began are not listed. Unreadable records are skipped with a warning in
// the log; Stats counts them.
func (s *Store) List(ctx context.Context, f Filter, fn func(Record) error) error {
	snap, err := s.snapshot(ctx, f)
	if err != nil {
		return err
	}
	return s.scan(ctx, snap, f, false, fn, nil)
}

// Stats are counts of the dead letters a filter selects.
type Stats struct {
	Total     int            // records selected
	ByReason  map[string]int // Total split by reason
	ByErrCode map[int]int    // Total split by errcode (0: none, e.g. invalid_event)
	// Malformed counts records on the filter's subject that could not be
	// read (foreign messages on logistics.deadletter.*); they are in no
	// other count and only a purge of the whole stream or waybill removes
	// them.
	Malformed int
}

// Stats counts the dead letters f selects by reason and errcode. It reads
// headers only.
func (s *Store) Stats(ctx context.Context, f Filter) (Stats, error) {
	st := Stats{ByReason: map[string]int{}, ByErrCode: map[int]int{}}
	snap, err := s.snapshot(ctx, f)
	if err != nil {
		return st, err
	}
	err = s.scan(ctx, snap, f, true, func(r Record) error {
		st.Total++
		st.ByReason[r.Reason]++
		st.ByErrCode[r.ErrCode]++
		return nil
	}, func(uint64, error) { st.Malformed++ })
	return st, err
}

// Count is how many dead letters f selects. With no criterion but the
// waybill it asks the server (no reading); otherwise it reads headers.
func (s *Store) Count(ctx context.Context, f Filter) (int, error) {
	snap, err := s.snapshot(ctx, f)
	if err != nil {
		return 0, err
	}
	if f.onlyWaybill() {
		return int(snap.onSubject), nil
	}
	n := 0
	err = s.scan(ctx, snap, f, true, func(Record) error { n++; return nil }, nil)
	return n, err
}
