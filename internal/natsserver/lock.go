package natsserver

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the file inside Config.StoreDir that a running server
// holds locked, and that names its process. Two servers on one store would
// each rebuild the other's stream state from stale files.
const LockFileName = "pathupdate.lock"

// DataDirInUseError says a server is already running on the StoreDir,
// in this process or another.
type DataDirInUseError struct {
	Dir string // the StoreDir, absolute
	PID int    // the process holding it; 0 when the lock file does not say
}

func (e *DataDirInUseError) Error() string {
	holder := "another process"
	switch {
	case e.PID == os.Getpid():
		holder = fmt.Sprintf("this process (%d)", e.PID)
	case e.PID > 0:
		holder = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("natsserver: data directory %s is in use by %s, which runs an embedded NATS server on it "+
		"(another pathupdate worker?): stop that one, or give this one another --data-dir", e.Dir, holder)
}

// dirLock is a held lock on a StoreDir.
type dirLock struct{ f *os.File }

// lockDir creates dir if need be and locks it for this server, writing
// this process's id into the lock file. The lock belongs to the open file:
// it is released by release, or by the kernel when the process ends, so a
// lock file left by a dead process blocks nothing.
func lockDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("natsserver: StoreDir %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("natsserver: lock StoreDir: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("natsserver: lock %s: %w", path, err)
	}
	if held {
		pid := readPID(f)
		f.Close()
		return nil, &DataDirInUseError{Dir: dir, PID: pid}
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("natsserver: write %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// readPID reads the holder's process id from the lock file; 0 if it has
// not written it (yet) or the file holds something else.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release empties the lock file (no stale process id is left behind) and
// unlocks it. Safe on nil.
func (l *dirLock) release() {
	if l == nil {
		return
	}
	_ = l.f.Truncate(0)
	l.f.Close()
}
