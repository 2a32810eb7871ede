package cli_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

// A mistyped command is named, with the closest real one, and refused with
// exit 2, the status of a usage error; no help page floods the terminal.
func TestUnknownCommandNamesTheClosest(t *testing.T) {
	clearEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"wroker"}, `unknown command "wroker" (did you mean "worker"?)`},
		{[]string{"deadletter", "lsit"}, `unknown command "lsit" (did you mean "list"?)`},
		{[]string{"pubilsh", "--file", "x"}, `unknown command "pubilsh" (did you mean "publish"?)`},
		{[]string{"--nats-url", "nats://x:4222", "--log-level", "warn", "stauts", "--json"}, `unknown command "stauts" (did you mean "status"?)`},
		{[]string{"dl", "--log-level", "warn", "lst"}, `unknown command "lst" (did you mean "list"?)`},
		{[]string{"dl", "replya"}, `unknown command "replya" (did you mean "replay"?)`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\n"},
	} {
		code, stdout, stderr := run(context.Background(), "", tt.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", tt.args, code)
		}
		if !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "No help topic") {
			t.Errorf("%q: stderr %q, want %q", tt.args, stderr, tt.want)
		}
		if stdout != "" || strings.Count(stderr, "\n") > 2 {
			t.Errorf("%q: more than the error and a usage line: stdout %q, stderr %q", tt.args, stdout, stderr)
		}
	}
}

// An unknown flag or a bad flag value gets the error and one usage line,
// not the whole help.
func TestUsageErrorPrintsOneUsageLine(t *testing.T) {
	clearEnv(t)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"publish", "--bogus"}, []string{"unknown flag --bogus\n", "usage: pathupdate publish [options]; see pathupdate publish --help"}},
		{[]string{"publish", "--wayblil", "W"}, []string{"unknown flag --wayblil (did you mean --waybill?)"}},
		{[]string{"deadletter", "show", "--jsn", "1"}, []string{"unknown flag --jsn", "usage: pathupdate deadletter show [options] SEQ"}},
		{[]string{"demo", "--waybills", "many"}, []string{`invalid value "many" for flag --waybills`, "usage: pathupdate demo [options]"}},
		{[]string{"--nats-ulr", "x", "status"}, []string{"unknown flag --nats-ulr (did you mean --nats-url?)", "usage: pathupdate COMMAND [options]"}},
	} {
		code, stdout, stderr := run(context.Background(), "", tt.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", tt.args, code)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q does not say %q", tt.args, stderr, w)
			}
		}
		if stdout != "" || strings.Count(stderr, "\n") > 2 || strings.Contains(stderr, "OPTIONS") {
			t.Errorf("%q: more than the error and a usage line: stdout %q, stderr %q", tt.args, stdout, stderr)
		}
	}
}

// commandPaths lists every command of the tree as its argument path.
func commandPaths(cmd *ucli.Command, path []string) [][]string {
	paths := [][]string{path}
	for _, sub := range cmd.Commands {
		if sub.Name == "help" {
			continue
		}
		paths = append(paths, commandPaths(sub, append(append([]string(nil), path...), sub.Name))...)
	}
	return paths
}

// Every command's help shows examples, and no flag shows two defaults
// ("(default: now) (default: 0)").
func TestEveryCommandHelpHasExamplesAndOneDefault(t *testing.T) {
	clearEnv(t)
	root := cli.New(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	paths := commandPaths(root, nil)
	if len(paths) < 12 {
		t.Fatalf("walked %d commands: the walk is broken", len(paths))
	}
	twoDefaults := regexp.MustCompile(`\(default: [^)]*\).*\(default: `)
	examplesSection := regexp.MustCompile(`Examples:\n +\S`)
	for _, p := range paths {
		code, stdout, stderr := run(context.Background(), "", append(p, "--help")...)
		name := strings.Join(append([]string{"pathupdate"}, p...), " ")
		if code != 0 {
			t.Errorf("%s --help: exit %d: %s", name, code, stderr)
			continue
		}
		if !examplesSection.MatchString(stdout) {
			t.Errorf("%s --help has no Examples section:\n%s", name, stdout)
		}
		for _, l := range strings.Split(stdout, "\n") {
			if twoDefaults.MatchString(l) {
				t.Errorf("%s --help shows two defaults: %q", name, strings.TrimSpace(l))
			}
		}
	}
}

func TestVersionFlag(t *testing.T) {
	clearEnv(t)
	code, stdout, stderr := run(context.Background(), "", "--version")
	if code != 0 || !strings.HasPrefix(stdout, "pathupdate ") || !strings.Contains(stdout, "go1.") {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, _ := run(context.Background(), "", "worker", "--version"); code != 2 {
		t.Errorf("worker --version: exit %d, want 2 (--version belongs to the program, not to a command)", code)
	}
}

// goFieldName matches a Go field name as a package's Validate writes it.
var goFieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]*(Config|Filter|Options)\.[A-Z]|\bConfig\.`)

// No error the command line prints names a Go field (Config.Token,
// Filter.Waybill): it names the flag the user typed.
func TestErrorsNameFlagsNotGoNames(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"deadletter", "list", "--waybill", "a b"}, `--waybill "a b" is not a waybill id`},
		{[]string{"deadletter", "purge", "--waybill", "a.b", "--yes"}, `--waybill "a.b" is not a waybill id`},
		{[]string{"gateway", "--gateway-token", "short"}, "invalid setting --gateway-token (PATHUPDATE_GATEWAY_TOKEN): 5 characters long"},
		{[]string{"gateway", "--gateway-token", "0123456789abcdef 0123456789"}, "invalid setting --gateway-token (PATHUPDATE_GATEWAY_TOKEN): a character at position 17"},
		{[]string{"publish", "--max-pending", "-1"}, "invalid setting --max-pending (PATHUPDATE_PUBLISH_MAX_PENDING): -1: use a positive count"},
		{[]string{"sandbox", "--addr", "127.0.0.1:0", "--system-error-rate", "2"}, "--system-error-rate 2: want a fraction"},
		{[]string{"sandbox", "--addr", "127.0.0.1:0", "--latency", "-1s"}, "--latency -1s: want 0 or more"},
		{[]string{"sandbox", "--addr", "127.0.0.1:0", "--token-ttl", "10ms"}, "--token-ttl is 10ms"},
	} {
		code, _, stderr := run(context.Background(), "", append(tt.args, "--nats-url", s.ClientURL())...)
		if code == 0 {
			t.Errorf("%q: exit 0", tt.args)
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: stderr %q, want %q", tt.args, stderr, tt.want)
		}
		if m := goFieldName.FindString(stderr); m != "" {
			t.Errorf("%q: stderr names the Go field %s: %q", tt.args, m, stderr)
		}
	}
}
