// Package e2e runs the real pathupdate binary as separate processes
// against a real JetStream server and the sandbox over HTTP: what users
// run, killed the way production kills it.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the pathupdate command built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() { // `make test-short`: the quick loop skips whole processes and clusters
		fmt.Println("e2e: skipped under -short (runs the built binary as processes)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "pathupdate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pathupdate")
	build := exec.Command("go", "build", "-o", binary, "github.com/pathupdate/pathupdate/cmd/pathupdate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pathupdate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
