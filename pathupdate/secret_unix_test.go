//go:build unix

package pathupdate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestReadSecretFileThroughOwnGroup: a file another user owns, readable
// by this process's group (a Kubernetes secret volume with the pod's
// fsGroup: root's file, mode 0440), is not exposed; the same file
// readable by others is. Changing a file's owner takes root.
func TestReadSecretFileThroughOwnGroup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		perm    os.FileMode
		exposed bool
	}{{0o440, false}, {0o444, true}} {
		p := filepath.Join(dir, tt.perm.String())
		if err := os.WriteFile(p, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65532, os.Getegid()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tt.perm); err != nil {
			t.Fatal(err)
		}
		got, exposed, err := pathupdate.ReadSecretFile(p)
		if err != nil || got != "s3cret" || exposed != tt.exposed {
			t.Errorf("%s owned by another user, our group: exposed %v (want %v), %v", tt.perm, exposed, tt.exposed, err)
		}
	}
}
