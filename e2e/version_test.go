package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `pathupdate --version` names the commit a binary was built from: built
// in a clone (go build stamps the VCS revision), it prints what
// `git rev-parse HEAD` says.
func TestVersionNamesTheRevision(t *testing.T) {
	if fi, err := os.Stat("../.git"); err != nil || !fi.IsDir() {
		t.Skip("not a git clone (go build stamps a revision only in one; a worktree's .git file is not enough)")
	}
	head, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("git: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "pathupdate")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/pathupdate")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if want := "revision " + strings.TrimSpace(string(head)); !strings.HasPrefix(string(out), "pathupdate ") || !strings.Contains(string(out), want) {
		t.Errorf("--version printed %q, want %q", out, want)
	}
}
