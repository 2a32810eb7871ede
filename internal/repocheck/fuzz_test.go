package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// `make fuzz` runs the targets `make fuzz-targets` lists; this test holds
// that list against every Fuzz function in the repository's test files, so
// a target cannot be written and then never fuzzed.
func TestMakeFuzzRunsEveryFuzzTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles every test package (go test -list)")
	}
	make, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	top := root(t)
	var want []string
	fset := token.NewFileSet()
	for _, f := range trackedFiles(t, top, "_test.go") {
		if strings.HasPrefix(f, "bench/peer/") { // a module of its own: not in ./...
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(top, f), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Fuzz") && isFuzzFunc(fn) {
				want = append(want, filepath.ToSlash(filepath.Dir(f))+" "+fn.Name.Name)
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("no fuzz targets found in the test files")
	}
	cmd := exec.Command(make, "-s", "fuzz-targets")
	cmd.Dir = top
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make fuzz-targets: %v", err)
	}
	var got []string
	const module = "github.com/pathupdate/pathupdate"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, target, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("make fuzz-targets printed %q, want \"package target\" lines", line)
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if dir == "" {
			dir = "."
		}
		got = append(got, dir+" "+target)
	}
	slices.Sort(want)
	slices.Sort(got)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("make fuzz does not run %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("make fuzz-targets lists %s, which no test file defines", g)
		}
	}
}

// isFuzzFunc reports whether fn has the shape func FuzzX(f *testing.F).
func isFuzzFunc(fn *ast.FuncDecl) bool {
	params := fn.Type.Params.List
	if len(params) != 1 {
		return false
	}
	star, ok := params[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "F"
}
