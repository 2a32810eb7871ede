package deadletter

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// storeEnv is a real JetStream server with pathupdate's streams and a
// Store on it.
type storeEnv struct {
	js    jetstream.JetStream
	store *Store
}

func newStoreEnv(t testing.TB) *storeEnv {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(js, StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &storeEnv{js: js, store: st}
}

func opCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// synth is dead letter i (0-based; stored as seq i+1) of a synthetic
// stream: waybill W<i mod waybills>, and by i mod 4 a 40199, a 9300507, a
// retries_exhausted -1 and an invalid_event; FailedAt one millisecond
// apart from base.
func synth(i, waybills int, base time.Time) Record {
	r := synthMeta(i, waybills, base)
	r.OriginalSubject = "0.logistics.trace." + r.WaybillID
	if r.Reason == ReasonInvalidEvent {
		r.Event = []byte("not json")
	} else {
		r.Event = fmt.Appendf(nil, `{"token":"tok","waybill_id":%q,"action_time":%d,"action_type":200001,"action_msg":"step %d"}`, r.WaybillID, 1_767_225_600+i, i)
	}
	return r
}

// synthMeta is synth without the text fields: what a Filter looks at.
func synthMeta(i, waybills int, base time.Time) Record {
	r := Record{
		WaybillID:   fmt.Sprintf("W%04d", i%waybills),
		Attempts:    1,
		OriginalSeq: uint64(i + 1),
		FailedAt:    base.Add(time.Duration(i) * time.Millisecond),
		Seq:         uint64(i + 1),
	}
	switch i % 4 {
	case 0:
		r.Reason, r.ErrCode = ReasonRejected, pathupdate.ErrcodeWaybillNotFound
	case 1:
		r.Reason, r.ErrCode = ReasonRejected, pathupdate.ErrcodeIncorrectToken
	case 2:
		r.Reason, r.ErrCode, r.Attempts = ReasonRetriesExhausted, pathupdate.ErrcodeSystemError, 10
	case 3:
		r.Reason = ReasonInvalidEvent
	}
	return r
}

// fill writes n synthetic records fast: async publishes, a bounded number
// pending.
func (e *storeEnv) fill(t testing.TB, n, waybills int, base time.Time) {
	t.Helper()
	ctx := opCtx(t)
	for i := range n {
		if _, err := e.js.PublishMsgAsync(synth(i, waybills, base).Msg()); err != nil {
			t.Fatal(err)
		}
		if i%2000 == 1999 || i == n-1 {
			select {
			case <-e.js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal("async publishes not acknowledged")
			}
		}
	}
	if got := e.count(t); got != uint64(n) {
		t.Fatalf("stream holds %d records, want %d", got, n)
	}
}

func (e *storeEnv) count(t testing.TB) uint64 {
	t.Helper()
	st, err := e.js.Stream(opCtx(t), pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// TestListLargeStream runs several filters over 100,000 dead letters and
// checks every answer against the generator.
func TestListLargeStream(t *testing.T) {
	t.Parallel()
	const n, waybills = 100_000, 999 // not a multiple of 4: every waybill has every reason
	e := newStoreEnv(t)
	// FailedAt spans [now-200s, now-100s]: every record is stored after
	// its FailedAt, as a worker writes it.
	base := time.Now().Add(-200 * time.Second)
	e.fill(t, n, waybills, base)

	want := func(f Filter) (count int, firstSeq, lastSeq uint64) {
		for i := range n {
			if r := synthMeta(i, waybills, base); f.Match(r) {
				if count == 0 {
					firstSeq = r.Seq
				}
				count, lastSeq = count+1, r.Seq
			}
		}
		return count, firstSeq, lastSeq
	}
	// Each full pass over 100,000 records costs ~10 s under -race (the
	// embedded server is instrumented too), so only "all" (and the stats
	// below) read everything; the others are narrowed by the server
	// (subject, start sequence) as a real operator's filters mostly are.
	filters := map[string]Filter{
		"all":                      {},
		"reason and since":         {Waybill: "W0500", Reason: ReasonRetriesExhausted, Since: base.Add(70 * time.Second)},
		"waybill":                  {Waybill: "W0042"},
		"waybill and errcode":      {Waybill: "W0007", ErrCode: new(pathupdate.ErrcodeWaybillNotFound)},
		"waybill, errcode, reason": {Waybill: "W0009", ErrCode: new(0), Reason: ReasonInvalidEvent},
		"errcode not stored":       {Waybill: "W0001", ErrCode: new(47001)},
		"from seq and errcode":     {FromSeq: 99_001, ErrCode: new(pathupdate.ErrcodeIncorrectToken)},
		"from seq beyond the end":  {FromSeq: n + 1},
		"unknown waybill":          {Waybill: "NOPE"},
		"since the future":         {Since: time.Now().Add(time.Hour)},
	}
	for name, f := range filters {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wantN, wantFirst, wantLast := want(f)
			got, prev := 0, uint64(0)
			var first, heapPeak uint64
			var ms runtime.MemStats
			err := e.store.List(opCtx(t), f, func(r Record) error {
				if r.Seq <= prev {
					return fmt.Errorf("seq %d after %d: not in stream order", r.Seq, prev)
				}
				if !f.Match(r) {
					return fmt.Errorf("seq %d does not match %s: %+v", r.Seq, f, r)
				}
				exp := synth(int(r.Seq-1), waybills, base)
				if r.WaybillID != exp.WaybillID || r.ErrCode != exp.ErrCode || string(r.Event) != string(exp.Event) {
					return fmt.Errorf("seq %d read back as %+v, want %+v", r.Seq, r, exp)
				}
				if got == 0 {
					first = r.Seq
				}
				if got%20_000 == 0 {
					runtime.ReadMemStats(&ms)
					heapPeak = max(heapPeak, ms.HeapAlloc)
				}
				got, prev = got+1, r.Seq
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != wantN || got > 0 && (first != wantFirst || prev != wantLast) {
				t.Fatalf("%s: %d records, seqs %d..%d; want %d, %d..%d", f, got, first, prev, wantN, wantFirst, wantLast)
			}
			// The callback gets one record at a time: the heap stays at a
			// batch, not the stream. Logged, not asserted (GC timing).
			t.Logf("%s: %d records; heap peak seen while listing %d KiB", f, got, heapPeak>>10)
			if wantN != n && f.Since.IsZero() { // Count narrows the same way
				if c, err := e.store.Count(opCtx(t), f); err != nil || c != wantN {
					t.Fatalf("Count(%s) = %d, %v; want %d", f, c, err, wantN)
				}
			}
		})
	}

	t.Run("stats by reason and errcode", func(t *testing.T) {
		t.Parallel()
		st, err := e.store.Stats(opCtx(t), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		q := n / 4
		if st.Total != n || st.Malformed != 0 ||
			st.ByReason[ReasonRejected] != 2*q || st.ByReason[ReasonRetriesExhausted] != q || st.ByReason[ReasonInvalidEvent] != q ||
			st.ByErrCode[40199] != q || st.ByErrCode[9300507] != q || st.ByErrCode[-1] != q || st.ByErrCode[0] != q {
			t.Fatalf("stats %+v", st)
		}
	})

	// A page: stop after 100 records, resume after the last seq seen.
	t.Run("paging", func(t *testing.T) {
		t.Parallel()
		errPageFull := errors.New("page full")
		page := func(from uint64) []uint64 {
			var seqs []uint64
			err := e.store.List(opCtx(t), Filter{FromSeq: from, Reason: ReasonRejected}, func(r Record) error {
				seqs = append(seqs, r.Seq)
				if len(seqs) == 100 {
					return errPageFull
				}
				return nil
			})
			if !errors.Is(err, errPageFull) {
				t.Fatalf("page from %d: err = %v after %d records", from, err, len(seqs))
			}
			return seqs
		}
		p1 := page(50_001)
		p2 := page(p1[len(p1)-1] + 1)
		if p1[0] != 50_001 || p1[99] != 50_198 || p2[0] != 50_201 || p2[99] != 50_398 {
			t.Fatalf("pages %d..%d and %d..%d", p1[0], p1[99], p2[0], p2[99])
		}
	})

}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	_, bare := natstest.Connect(t, natstest.Start(t))
	st, err := NewStore(bare, StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := opCtx(t)
	if err := st.List(ctx, Filter{}, func(Record) error { return nil }); !strings.Contains(err.Error(), pathupdate.DeadLetterStream) || !strings.Contains(err.Error(), "start a worker") {
		t.Errorf("List without stream: %v", err)
	}
	if _, err := st.Get(ctx, 1); !errors.Is(err, ErrNoStream) {
		t.Errorf("Get without stream: %v", err)
	}

	e := newStoreEnv(t)
	e.fill(t, 10, 2, time.Now())
	if _, err := e.store.Get(ctx, 11); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "11") {
		t.Errorf("Get(11): %v", err)
	}
	if _, err := e.store.Get(ctx, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(0): %v", err)
	}
	r, err := e.store.Get(ctx, 3)
	if err != nil || r.Seq != 3 || r.WaybillID != "W0000" || r.ErrCode != pathupdate.ErrcodeSystemError || string(r.Event) != string(synth(2, 2, time.Time{}).Event) {
		t.Errorf("Get(3) = %+v, %v", r, err)
	}
	if err := e.store.List(ctx, Filter{Waybill: "a.b"}, func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "Filter.Waybill") {
		t.Errorf("bad waybill filter: %v", err)
	}
	if _, err := NewStore(e.js, StoreConfig{Concurrency: -1}); err == nil || !strings.Contains(err.Error(), "StoreConfig.Concurrency") {
		t.Errorf("bad config: %v", err)
	}

	// A foreign message on a dead-letter subject is skipped and counted.
	if _, err := e.js.Publish(ctx, "logistics.deadletter.W0000", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	stats, err := e.store.Stats(ctx, Filter{})
	if err != nil || stats.Total != 10 || stats.Malformed != 1 {
		t.Errorf("stats with a foreign message: %+v, %v", stats, err)
	}
	if _, err := e.store.Get(ctx, 11); !errors.Is(err, ErrMalformed) {
		t.Errorf("Get of the foreign message: %v", err)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	const n, waybills = 400, 5 // waybill and reason vary independently
	base := time.Now()
	e := newStoreEnv(t)
	e.fill(t, n, waybills, base)
	ctx := opCtx(t)
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	// purge removes what f selects and checks the count, then that exactly
	// the expected records are left.
	purge := func(f Filter) {
		t.Helper()
		want := 0
		for i := range n {
			if alive[i] && f.Match(synthMeta(i, waybills, base)) {
				alive[i] = false
				want++
			}
		}
		removed, err := e.store.Purge(ctx, f)
		if err != nil || removed != want {
			t.Fatalf("Purge(%s) = %d, %v; want %d", f, removed, err, want)
		}
		left := 0
		err = e.store.List(ctx, Filter{}, func(r Record) error {
			if !alive[r.Seq-1] {
				return fmt.Errorf("seq %d survived purge %s", r.Seq, f)
			}
			left++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if wantLeft := countTrue(alive); left != wantLeft {
			t.Fatalf("after Purge(%s): %d left, want %d", f, left, wantLeft)
		}
	}
	purge(Filter{ErrCode: new(pathupdate.ErrcodeIncorrectToken)}) // across waybills: record by record
	purge(Filter{Waybill: "W0001"})                               // a waybill alone: one subject purge
	purge(Filter{Waybill: "W0002", Reason: ReasonRetriesExhausted})
	purge(Filter{Waybill: "NONE"})
	purge(Filter{Since: base.Add(300 * time.Millisecond)})
	purge(Filter{})
	if e.count(t) != 0 {
		t.Fatalf("%d records left after purging all", e.count(t))
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
