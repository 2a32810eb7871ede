package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/internal/cli"
)

// A shell line of the README that builds or runs pathupdate.
type readmeLine struct {
	n    int    // line number in README.md
	text string // continuation lines joined
}

var (
	fenceOpen = regexp.MustCompile("^```(sh|console|bash|shell)\\s*$")
	heredoc   = regexp.MustCompile(`<<-?\s*'?"?([A-Za-z_]+)'?"?`)
	// inline code spans that build or run the binary: `go build -o ...`,
	// `go run ./cmd/pathupdate ...`, `bin/pathupdate ...`
	inlineRun = regexp.MustCompile("`((?:[A-Z_]+=\\S+ )*(?:go run \\./cmd/pathupdate|bin/pathupdate|go build -o \\S+) [^`]+)`")
)

// readmeShell returns the README's shell blocks (for a parse check as a
// whole) and its lines that build or run pathupdate: in sh blocks every
// command line, in console blocks the lines after "$ ", and inline code
// spans that start with a way to run it.
func readmeShell(readme string) (blocks []string, lines []readmeLine) {
	var (
		inFence, console bool
		block            []string
		pending          readmeLine
		endHeredoc       string
	)
	for i, l := range strings.Split(readme, "\n") {
		n := i + 1
		if !inFence {
			if m := fenceOpen.FindStringSubmatch(l); m != nil {
				inFence, console, block = true, m[1] == "console", nil
				continue
			}
			for _, m := range inlineRun.FindAllStringSubmatch(l, -1) {
				lines = append(lines, readmeLine{n, m[1]})
			}
			continue
		}
		if strings.HasPrefix(l, "```") {
			inFence = false
			if !console {
				blocks = append(blocks, strings.Join(block, "\n"))
			}
			continue
		}
		if endHeredoc != "" { // the body of a here-document is data
			block = append(block, l)
			if strings.TrimSpace(l) == endHeredoc {
				endHeredoc = ""
			}
			continue
		}
		text := l
		if console {
			if pending.text == "" {
				if !strings.HasPrefix(l, "$ ") {
					continue // output
				}
				text = strings.TrimPrefix(l, "$ ")
			}
		} else {
			block = append(block, l)
		}
		if pending.text == "" {
			pending.n = n
		}
		if strings.HasSuffix(text, `\`) {
			pending.text += strings.TrimSuffix(text, `\`)
			continue
		}
		pending.text += text
		if m := heredoc.FindStringSubmatch(pending.text); m != nil {
			endHeredoc = m[1]
		}
		if t := strings.TrimSpace(pending.text); t != "" && !strings.HasPrefix(t, "#") {
			lines = append(lines, readmeLine{pending.n, t})
		}
		pending = readmeLine{}
	}
	return blocks, lines
}

// shellWords splits one command of a shell line into words, resolving
// quotes; it stops at a comment, a redirection or the end of the command
// (|, &, ;). rest is what follows the command's end.
func shellWords(s string) (words []string, rest string) {
	var (
		w      strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				w.WriteByte(s[j])
			}
			i, inWord = j, true
		case c == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			i, inWord = i+1, true
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			flush()
			return words, ""
		case c == '|' || c == '&' || c == ';':
			flush()
			return words, strings.TrimLeft(s[i:], "|&; ")
		case c == '>' || c == '<':
			flush()
			// skip the redirection and its target up to the command's end
			j := strings.IndexAny(s[i:], "|&;")
			if j < 0 {
				return words, ""
			}
			return words, strings.TrimLeft(s[i+j:], "|&; ")
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, ""
}

// checkArgs walks args (after the program name) down the command tree and
// returns what is wrong: an unknown command or flag.
func checkArgs(root *ucli.Command, args []string) []string {
	var problems []string
	cmd := root
	path := []*ucli.Command{root}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			fl := lookupFlag(path, name)
			if fl == nil {
				problems = append(problems, "unknown flag "+a+" of "+cmd.FullName())
				continue
			}
			if takesValue(fl) && !hasValue {
				i++
			}
			continue
		}
		if sub := cmd.Command(a); sub != nil {
			cmd = sub
			path = append(path, sub)
			continue
		}
		if len(cmd.Commands) > 0 { // a group takes commands, not arguments
			problems = append(problems, "unknown command "+a+" of "+cmd.Name)
		}
	}
	if cmd == root && !slices.ContainsFunc(args, func(a string) bool { return a == "--version" || a == "--help" || a == "-h" }) {
		problems = append(problems, "runs no command")
	}
	return problems
}

func lookupFlag(path []*ucli.Command, name string) ucli.Flag {
	for i := len(path) - 1; i >= 0; i-- {
		for _, fl := range path[i].Flags {
			if slices.Contains(fl.Names(), name) {
				return fl
			}
		}
	}
	if name == "help" || name == "h" || (len(path) == 1 && (name == "version" || name == "v")) {
		return &ucli.BoolFlag{Name: name}
	}
	return nil
}

func takesValue(fl ucli.Flag) bool {
	if d, ok := fl.(ucli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return true
}

// Every README line that builds or runs pathupdate works from a fresh
// clone: the shell parses it, the binary it runs is one the README builds
// (a bare `pathupdate` is on no one's PATH), `go build -o` does not write
// into a package folder, and every command and flag exists.
func TestREADMECommandsRunAsWritten(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, lines := readmeShell(string(readme))
	if len(lines) < 10 {
		t.Fatalf("found only %d command lines in README.md: the extraction is broken", len(lines))
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		for _, b := range blocks {
			if out, err := exec.Command(bash, "-n", "-c", b).CombinedOutput(); err != nil {
				t.Errorf("README.md: a sh block does not parse: %v: %s\n%s", err, out, b)
			}
		}
		for _, l := range lines {
			if out, err := exec.Command(bash, "-n", "-c", l.text).CombinedOutput(); err != nil {
				t.Errorf("README.md:%d does not parse: %v: %s", l.n, err, out)
			}
		}
	}
	root := cli.New(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	built := map[string]bool{}
	runs := 0
	for _, l := range lines {
		for rest := l.text; rest != ""; {
			var words []string
			words, rest = shellWords(rest)
			for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
				words = words[1:] // VAR=value
			}
			if len(words) == 0 {
				continue
			}
			var args []string
			switch {
			case len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/pathupdate":
				args = words[3:]
			case len(words) >= 2 && words[0] == "go" && words[1] == "build":
				if i := slices.Index(words, "-o"); i >= 0 && i+1 < len(words) {
					out := words[i+1]
					if fi, err := os.Stat(filepath.Join("../..", out)); err == nil && fi.IsDir() {
						t.Errorf("README.md:%d: go build -o %s writes into the folder %s/ of the repository, not to %s", l.n, out, out, out)
					}
					built[filepath.Clean(out)] = true
				}
				continue
			case words[0] == "pathupdate":
				t.Errorf("README.md:%d: %q runs a bare pathupdate, which a fresh clone does not have on its PATH: use bin/pathupdate (built by go build -o bin/pathupdate ./cmd/pathupdate) or go run ./cmd/pathupdate", l.n, l.text)
				continue
			case strings.HasSuffix(words[0], "/pathupdate"):
				if !built[filepath.Clean(words[0])] {
					t.Errorf("README.md:%d: runs %s, which no earlier line of the README builds", l.n, words[0])
				}
				args = words[1:]
			default:
				continue
			}
			runs++
			for _, p := range checkArgs(root, args) {
				t.Errorf("README.md:%d: %s: %s", l.n, l.text, p)
			}
		}
	}
	if runs < 10 {
		t.Fatalf("checked only %d runs of pathupdate in README.md: the extraction is broken", runs)
	}
}

// The checker itself: what it must catch.
func TestREADMECommandChecker(t *testing.T) {
	root := cli.New(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	for _, tt := range []struct {
		line string
		ok   bool
	}{
		{`publish --waybill SF1 --waybill-token "$TOKEN" --action-type 100001 --action-msg "快递员已揽件"`, true},
		{`--nats-url nats://x:4222 deadletter replay --waybill W --set-token t --dry-run`, true},
		{`deadletter show 2          # comment`, true},
		{`worker --sandbox &`, true},
		{`status | head`, true},
		{`--version`, true},
		{`wroker`, false},
		{`deadletter lsit`, false},
		{`publish --waybil W`, false},
		{`deadletter list --set-token x`, false},
		{`--waybill W`, false},
	} {
		words, _ := shellWords(tt.line)
		problems := checkArgs(root, words)
		if ok := len(problems) == 0; ok != tt.ok {
			t.Errorf("%q: problems %q, want ok=%v", tt.line, problems, tt.ok)
		}
	}
	_, lines := readmeShell("x `go run ./cmd/pathupdate worker --sandbox`.\n```console\n$ bin/pathupdate deadletter list \\\n   --json\noutput\n```\n```sh\ncat > f <<'E'\npathupdate nothing\nE\ngo build -o bin/pathupdate ./cmd/pathupdate # build\n```\n")
	var got []string
	for _, l := range lines {
		got = append(got, l.text)
	}
	want := []string{"go run ./cmd/pathupdate worker --sandbox", "bin/pathupdate deadletter list    --json", "cat > f <<'E'", "go build -o bin/pathupdate ./cmd/pathupdate # build"}
	if !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
}
