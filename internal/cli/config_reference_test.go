package cli_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/internal/cli"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's configuration reference from the commands' flags")

const (
	refBegin = "<!-- BEGIN configuration reference: generated from the commands' flags by TestREADMEConfigurationReference in internal/cli/; do not edit -->\n"
	refEnd   = "<!-- END configuration reference -->\n"
)

// TestREADMEConfigurationReference fails when README.md's table of
// settings differs from what the commands define, so it cannot drift.
// Rewrite it with:
//
//	go test ./internal/cli -run TestREADMEConfigurationReference -update-readme
func TestREADMEConfigurationReference(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i, j := strings.Index(text, refBegin), strings.Index(text, refEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no configuration reference between %q and %q", refBegin, refEnd)
	}
	want := configReference()
	if got := text[i+len(refBegin) : j]; got != want {
		if *updateREADME {
			if err := os.WriteFile(path, []byte(text[:i+len(refBegin)]+want+text[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's configuration reference is out of date: run\n\tgo test ./internal/cli -run TestREADMEConfigurationReference -update-readme\nwant:\n%s", want)
	}
}

// TestConfigReferenceCoversEverySetting: every flag with an environment
// variable is in the table, so a new setting shows up in README.
func TestConfigReferenceCoversEverySetting(t *testing.T) {
	table := configReference()
	var b bytes.Buffer
	walk(cli.New(strings.NewReader(""), &b, &b), "", func(_ string, fl ucli.Flag) {
		d := fl.(ucli.DocGenerationFlag)
		for _, env := range d.GetEnvVars() {
			if !strings.Contains(table, "| `"+env+"` | `--"+fl.Names()[0]+"`") {
				t.Errorf("%s / --%s is not in the reference", env, fl.Names()[0])
			}
		}
	})
	if n := strings.Count(table, "\n| `"); n < 40 {
		t.Errorf("only %d rows", n)
	}
}

// walk calls fn for every flag with an environment variable, with the
// command path ("" for the global flags).
func walk(cmd *ucli.Command, path string, fn func(string, ucli.Flag)) {
	for _, fl := range cmd.Flags {
		if d, ok := fl.(ucli.DocGenerationFlag); ok && len(d.GetEnvVars()) > 0 {
			fn(path, fl)
		}
	}
	for _, sub := range cmd.Commands {
		walk(sub, strings.TrimSpace(path+" "+sub.Name), fn)
	}
}

// configReference renders the table: one row per setting, global ones
// first, then in command order; a setting several commands share is one
// row listing them (with each default where they differ).
func configReference() string {
	type row struct {
		env, flag, usage string
		cmds             []string
		defaults         []string
	}
	var rows []*row
	byFlag := map[string]*row{}
	var b bytes.Buffer
	walk(cli.New(strings.NewReader(""), &b, &b), "", func(cmdPath string, fl ucli.Flag) {
		d := fl.(ucli.DocGenerationFlag)
		name := fl.Names()[0]
		if cmdPath == "" {
			cmdPath = "all"
		}
		def := defaultText(fl)
		r, ok := byFlag[name]
		if !ok {
			r = &row{env: strings.Join(d.GetEnvVars(), "`, `"), flag: name, usage: d.GetUsage()}
			byFlag[name] = r
			rows = append(rows, r)
		}
		r.cmds = append(r.cmds, cmdPath)
		r.defaults = append(r.defaults, def)
	})
	var out strings.Builder
	out.WriteString("| env | flag / file key | default | commands | meaning |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		def := r.defaults[0]
		if slices.ContainsFunc(r.defaults, func(d string) bool { return d != def }) {
			parts := make([]string, len(r.cmds))
			for i := range r.cmds {
				parts[i] = r.cmds[i] + ": " + r.defaults[i]
			}
			def = strings.Join(parts, "; ")
		}
		fmt.Fprintf(&out, "| `%s` | `--%s` | %s | %s | %s |\n", r.env, r.flag, def, strings.Join(r.cmds, ", "),
			strings.ReplaceAll(r.usage, "|", `\|`))
	}
	return out.String()
}

func defaultText(fl ucli.Flag) string {
	switch v := fl.Get().(type) {
	case string:
		if v == "" {
			return "(none)"
		}
		return "`" + v + "`"
	case time.Duration:
		return "`" + v.String() + "`"
	default:
		return fmt.Sprintf("`%v`", v)
	}
}
