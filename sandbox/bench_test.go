package sandbox_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/pathupdate/pathupdate/sandbox"
)

// BenchmarkPathUpdate measures a delivered path/update call over real HTTP,
// many at once: the ceiling the sandbox puts on benchmarks that use it.
func BenchmarkPathUpdate(b *testing.B) {
	srv := start(b, sandbox.Config{AcceptAnyWaybill: true})
	at := token(b, srv)
	u := updateURL(srv.URL, at)
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		w := fmt.Sprintf("W%d", n.Add(1))
		for i := 0; pb.Next(); i++ {
			a, err := do(b.Context(), srv.Client(), http.MethodPost, u, event(w, "T", i))
			if err != nil || a.ErrCode != 0 {
				b.Errorf("call: %+v %v", a, err)
				return
			}
		}
	})
	if got := srv.Stats().Delivered; got < int64(b.N) {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
}
