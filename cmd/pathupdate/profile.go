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
// PATHUPDATE_CPUPROFILE=DIR instead writes a CPU profile of the process's
// first PATHUPDATE_CPUPROFILE_SECONDS (default 10) to DIR/cpu.<pid>.pprof:
// for a worker whose life is too short to catch over HTTP, like scenario
// 14's (the larger file is the draining worker's):
//
//	PATHUPDATE_CPUPROFILE=/tmp/prof go run ./bench/cmd/pathupdate-bench -scenarios 14 -worker-bin /tmp/pathupdate-prof -out ""
//	go tool pprof -top /tmp/pathupdate-prof /tmp/prof/cpu.<pid>.pprof
//
// The shipped binary has no profiling endpoint: it would be one more
// listener to secure.

package main

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"
)

func init() {
	if dir := os.Getenv("PATHUPDATE_CPUPROFILE"); dir != "" {
		profileCPU(dir)
	}
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

func profileCPU(dir string) {
	secs, err := strconv.Atoi(os.Getenv("PATHUPDATE_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		secs = 10
	}
	f, err := os.Create(filepath.Join(dir, "cpu."+strconv.Itoa(os.Getpid())+".pprof"))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		os.Stderr.WriteString("pathupdate (profile build): cpu profile: " + err.Error() + "\n")
		return
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	})
}
