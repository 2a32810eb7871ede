package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"
)

// exitUsageCode is the exit status of a command line that is refused as
// written (an unknown command or flag, a flag value of the wrong type,
// flags that do not go together): nothing was done.
const exitUsageCode = 2

// examples are the Examples section of each command's help, by full
// command name. Kept here, in one place, so that every command has some
// and TestEveryCommandHasExamples can hold them to it.
var examples = map[string][]string{
	"pathupdate": {
		"pathupdate demo                       # see it work: embedded NATS, sandbox, worker, sample traffic",
		"pathupdate worker --sandbox           # a worker delivering to an in-process sandbox",
		"pathupdate --version",
	},
	"pathupdate worker": {
		"WECHAT_APPID=wx... WECHAT_APPSECRET_FILE=/run/secrets/appsecret pathupdate worker",
		"pathupdate worker --nats-url nats://n1:4222,nats://n2:4222 --replicas 3 --appid wx... --appsecret-file F",
		"pathupdate worker --sandbox --http-addr 127.0.0.1:9465",
		"pathupdate worker --print-config",
	},
	"pathupdate publish": {
		`pathupdate publish --waybill SF1234567890 --waybill-token "$TOKEN" --action-type 100001 --action-msg "picked up"`,
		"pathupdate publish --file events.jsonl",
		"producer | pathupdate publish         # JSON lines on stdin",
	},
	"pathupdate sandbox": {
		"pathupdate sandbox --accept-any-waybill",
		"pathupdate sandbox --orders-file orders.jsonl --system-error-rate 0.1 --seed 7",
	},
	"pathupdate demo": {
		"pathupdate demo",
		"pathupdate demo --waybills 1500 --seed 3 --keep-running",
		"pathupdate demo --transport cloudcall",
	},
	"pathupdate gateway": {
		"PATHUPDATE_GATEWAY_TOKEN_FILE=/run/secrets/gateway-token pathupdate gateway --gateway-addr 0.0.0.0:8088",
		`curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d @event.json http://127.0.0.1:8088/v1/events`,
	},
	"pathupdate deadletter": {
		"pathupdate deadletter list --reason rejected --since 2h",
		"pathupdate deadletter replay --errcode 40199",
	},
	"pathupdate deadletter list": {
		"pathupdate deadletter list --errcode 40199",
		"pathupdate deadletter list --waybill SF1234567890 --json",
	},
	"pathupdate deadletter show": {
		"pathupdate deadletter show 42",
	},
	"pathupdate deadletter stats": {
		"pathupdate deadletter stats --since 24h",
	},
	"pathupdate deadletter replay": {
		"pathupdate deadletter replay --errcode 40199 --dry-run",
		"pathupdate deadletter replay --waybill SF1234567890 --set-token tok-new",
	},
	"pathupdate deadletter purge": {
		"pathupdate deadletter purge --reason invalid_event --yes",
	},
	"pathupdate console": {
		"NATS_URL=nats://n1:4222 pathupdate console                      # http://127.0.0.1:8090, no login on loopback",
		"PATHUPDATE_CONSOLE_TOKEN_FILE=/run/secrets/console-token pathupdate console --console-addr 0.0.0.0:8090",
		"pathupdate console --console-read-only --console-addr 127.0.0.1:8091",
	},
	"pathupdate status": {
		"pathupdate status",
		"NATS_URL=nats://n1:4222 pathupdate status --json",
	},
	"pathupdate pause": {
		"pathupdate pause                      # until `pathupdate resume`",
		"pathupdate pause --for 2h",
		"pathupdate pause --until 2026-11-30T06:00:00+08:00",
	},
	"pathupdate resume": {
		"pathupdate resume",
	},
}

// finishCommands gives every command of the tree what the command line
// promises of all of them: an Examples section in its help, one short
// usage line and exit 2 on a usage error, and, on a command that only
// groups others, `unknown command "x"` with the closest one instead of a
// help page.
func finishCommands(cmd *cli.Command, fullName string) {
	if ex := examples[fullName]; len(ex) > 0 && !strings.Contains(cmd.Description, "Examples:") {
		if cmd.Description != "" {
			cmd.Description += "\n\n"
		}
		cmd.Description += "Examples:\n   " + strings.Join(ex, "\n   ")
	}
	cmd.OnUsageError = usageError
	if len(cmd.Commands) > 0 && cmd.Action == nil {
		cmd.Action = groupAction
	}
	for _, sub := range cmd.Commands {
		finishCommands(sub, fullName+" "+sub.Name)
	}
}

// usageError replaces urfave/cli's whole help page after a usage error by
// the error, the closest flag if any, and one usage line.
func usageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	msg := strings.Replace(err.Error(), "for flag -", "for flag --", 1) // the flag package's one dash
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		msg = fmt.Sprintf("unknown flag --%s", name)
		var names []string
		for _, fl := range allFlags(cmd) {
			names = append(names, fl.Names()...)
		}
		if s := closest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
	}
	return cli.Exit(fmt.Sprintf("%s\nusage: %s; see %s --help", msg, usageLine(cmd), cmd.FullName()), exitUsageCode)
}

// allFlags are the flags cmd accepts: its own and its ancestors'.
func allFlags(cmd *cli.Command) []cli.Flag {
	var flags []cli.Flag
	for _, c := range cmd.Lineage() {
		flags = append(flags, c.VisibleFlags()...)
	}
	return flags
}

func usageLine(cmd *cli.Command) string {
	line := cmd.FullName()
	if len(subcommands(cmd)) > 0 {
		line += " COMMAND"
	}
	line += " [options]"
	if cmd.ArgsUsage != "" {
		line += " " + cmd.ArgsUsage
	}
	return line
}

// groupAction runs for a command that only groups others (the root,
// deadletter): with no argument it shows the help (the root's --version
// aside); with one it names the unknown command and the closest there is.
func groupAction(ctx context.Context, cmd *cli.Command) error {
	if cmd == cmd.Root() && cmd.Bool(versionFlagName) {
		_, err := fmt.Fprintln(cmd.Root().Writer, versionText(debug.ReadBuildInfo()))
		return err
	}
	if cmd.Args().Len() == 0 {
		return cli.ShowSubcommandHelp(cmd)
	}
	return unknownCommand(cmd, cmd.FullName(), cmd.Args().First())
}

// unknownCommand is the refusal of name where group cmd (fullName) wants
// one of its commands.
func unknownCommand(cmd *cli.Command, fullName, name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	var names []string
	for _, sub := range subcommands(cmd) {
		names = append(names, sub.Names()...)
	}
	if s := closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return cli.Exit(fmt.Sprintf("%s\nusage: %s COMMAND [options]; %s --help lists the commands", msg, fullName, fullName), exitUsageCode)
}

// checkCommandWords finds a mistyped command before urfave/cli parses the
// flags: it reads the flags after the first word as the group's own and
// would report "unknown flag --file" for `pubilsh --file F`, hiding the
// real mistake.
func checkCommandWords(root *cli.Command, args []string) error {
	cmd, fullName := root, root.Name
	path := []*cli.Command{root}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			fl := flagNamedIn(path, name)
			if fl == nil {
				return nil // an unknown flag: urfave/cli's parse says so
			}
			if !hasValue && takesValue(fl) {
				i++ // its value
			}
			continue
		}
		sub := cmd.Command(a)
		if sub == nil {
			return unknownCommand(cmd, fullName, a)
		}
		if len(subcommands(sub)) == 0 {
			return nil // a command's own arguments follow
		}
		cmd, fullName = sub, fullName+" "+sub.Name
		path = append(path, sub)
	}
	return nil
}

func flagNamedIn(path []*cli.Command, name string) cli.Flag {
	for _, c := range path {
		for _, fl := range c.Flags {
			if slices.Contains(fl.Names(), name) {
				return fl
			}
		}
	}
	return nil
}

func takesValue(fl cli.Flag) bool {
	d, ok := fl.(cli.DocGenerationFlag)
	return !ok || d.TakesValue()
}

// subcommands are cmd's commands but the help command urfave/cli adds.
func subcommands(cmd *cli.Command) []*cli.Command {
	var subs []*cli.Command
	for _, sub := range cmd.Commands {
		if sub.Name != "help" {
			subs = append(subs, sub)
		}
	}
	return subs
}

// closest returns the name nearest to typed, or "" when none is near
// enough to be what was meant: at most a third of its letters (and at
// least one) edited, a swap of two neighbours counting as one edit.
func closest(typed string, names []string) string {
	best, bestDist := "", 0
	for _, n := range names {
		d := editDistance(typed, n)
		if limit := max(1, len(n)/3); d <= limit && (best == "" || d < bestDist) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of adjacent letters.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

const versionFlagName = "version"

// versionFlag is the root's --version. urfave/cli's own would need its
// package-level VersionFlag changed (its -v alias clashes with demo -v).
func versionFlag() cli.Flag {
	return &cli.BoolFlag{Name: versionFlagName, Usage: "print the version and VCS revision and exit", Local: true}
}

// versionText says which build this is: the module version (a tag, or
// "(devel)" for a build from a work tree), the VCS revision and whether
// the tree had changes, and the Go version.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "pathupdate (version unknown: built without module information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with uncommitted changes"
			}
		}
	}
	text := "pathupdate " + version
	if rev == "" {
		text += ", revision unknown (built without VCS information, e.g. by go run)"
	} else {
		text += ", revision " + rev
		if at != "" {
			text += " of " + at
		}
		text += modified
	}
	return text + ", " + info.GoVersion
}
