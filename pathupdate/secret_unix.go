//go:build unix

package pathupdate

import (
	"os"
	"syscall"
)

// readsThroughGroup: the file belongs to another user and its group is
// this process's own, so the group's read bit is what lets this process
// read it (a Kubernetes secret volume mounted with the pod's fsGroup is
// root's, mode 0440).
func readsThroughGroup(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Geteuid() && int(st.Gid) == os.Getegid()
}
