//go:build profile

// This file is built only with -tags profile: a build for measuring, never
// the one shipped. It serves net/http/pprof on PATHUPDATE_PPROF_ADDR so a
// benchmark's worker process (bench's -worker-bin) can be profiled while
// it runs, e.g. its live heap at the peak of scenario 6:
//
//	go build -tags profile -o /tmp/pathupdate-prof ./cmd/pathupdate
//	PATHUPDATE_PPROF_ADDR=127.0.0.1:6061 go run ./bench/cmd/pathupdate-bench -scenarios 6 -worker-bin /tmp/pathupdate-prof -out ""
//	go tool pprof -sample_index=inuse_space -top http://127.0.0.1:6061/debug/pprof/heap
//
// The shipped binary has no profiling endpoint: it would be one more
// listener to secure.

package main

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("PATHUPDATE_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		// A measuring build: if the address is taken, say so and go on
		// unprofiled rather than stop the run.
		if err := http.ListenAndServe(addr, nil); err != nil {
			os.Stderr.WriteString("pathupdate (profile build): pprof on " + addr + ": " + err.Error() + "\n")
		}
	}()
}
