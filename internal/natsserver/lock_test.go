package natsserver_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/natsserver"
)

// TestStoreDirLocked: a second server on a StoreDir in use is refused,
// naming the directory and the process; once the first stops, the
// directory is free again. flock locks belong to the open file, so two
// servers in one process conflict as two processes would.
func TestStoreDirLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := natsserver.Start(ctxFor(t), natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Shutdown)

	second, err := natsserver.Start(ctxFor(t), natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err == nil {
		second.Shutdown()
		t.Fatal("a second server started on a StoreDir in use")
	}
	var inUse *natsserver.DataDirInUseError
	if !errors.As(err, &inUse) || inUse.Dir != dir || inUse.PID != os.Getpid() {
		t.Fatalf("second Start: %v, want *DataDirInUseError{%s, %d}", err, dir, os.Getpid())
	}
	for _, want := range []string{dir, strconv.Itoa(os.Getpid()), "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}

	first.Shutdown()
	if b, err := os.ReadFile(filepath.Join(dir, natsserver.LockFileName)); err != nil || len(b) != 0 {
		t.Errorf("lock file after Shutdown: %q, %v; want it empty", b, err)
	}
	again, err := natsserver.Start(ctxFor(t), natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err != nil {
		t.Fatalf("Start after the first server stopped: %v", err)
	}
	again.Shutdown()
}

// TestStoreDirStaleLockFile: a lock file a dead process left behind (its
// pid written, no lock held) does not block a start.
func TestStoreDirStaleLockFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, natsserver.LockFileName), []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := natsserver.Start(ctxFor(t), natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err != nil {
		t.Fatalf("Start over a stale lock file: %v", err)
	}
	defer s.Shutdown()
	b, err := os.ReadFile(filepath.Join(dir, natsserver.LockFileName))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q (%v), want this process's id %d", b, err, os.Getpid())
	}
}
