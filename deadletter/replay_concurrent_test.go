package deadletter_test

import (
	"sync"
	"testing"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestTwoReplaysAtOnce: two replays of the same 300 dead letters, each on
// its own connection as two `pathupdate deadletter replay --errcode 40199`
// would be. Both succeed (one used to fail with "message deletion
// unsuccessful ... err_code=10043 description=sequence N not found" when
// it removed a record the other had removed first), and every event is
// delivered once, in order per waybill.
func TestTwoReplaysAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	unknown := traces("C", 30, 10, "tok-c") // not registered yet: 40199
	e.publish(t, unknown)
	e.settle(t, 300)
	e.register(unknown, "tok-c")

	code := pathupdate.ErrcodeWaybillNotFound
	f := deadletter.Filter{ErrCode: &code}
	stores := []*deadletter.Store{e.store, e.secondStore(t)}
	results := make([]deadletter.ReplayResult, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() { results[i], errs[i] = st.Replay(testCtx(t), f, deadletter.ReplayOptions{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replay %d: %v (%+v)", i, err, results[i])
		}
	}
	if n := results[0].Replayed + results[1].Replayed; n < 300 {
		t.Fatalf("the two replays replayed %d and %d: fewer than 300 together", results[0].Replayed, results[1].Replayed)
	}
	e.settle(t, 0)
	e.exactlyOnce(t, unknown, "tok-c")
}

// TestTwoPurgesAtOnce: two purges record by record over the same dead
// letters both succeed and together remove each once.
func TestTwoPurgesAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, deadletter.StoreConfig{})
	e.publish(t, traces("P", 20, 10, "tok-p")) // not registered: 40199
	e.settle(t, 200)
	code := pathupdate.ErrcodeWaybillNotFound
	f := deadletter.Filter{ErrCode: &code} // not the waybill alone: deleted one by one
	stores := []*deadletter.Store{e.store, e.secondStore(t)}
	removed := make([]int, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() { removed[i], errs[i] = st.Purge(testCtx(t), f) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("purge %d: %v", i, err)
		}
	}
	if removed[0]+removed[1] != 200 {
		t.Errorf("the purges removed %d and %d, want 200 together", removed[0], removed[1])
	}
	if n := e.streamMsgs(t, pathupdate.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

// secondStore is a Store on a connection of its own, as another process
// would have.
func (e *env) secondStore(t *testing.T) *deadletter.Store {
	t.Helper()
	_, js := natstest.Connect(t, e.srv)
	st, err := deadletter.NewStore(js, deadletter.StoreConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
