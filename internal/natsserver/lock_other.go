//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package natsserver

import "os"

// tryLock: this platform has no flock; the StoreDir is not locked (the
// lock file still names the process).
func tryLock(*os.File) (held bool, err error) { return false, nil }
