package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Setting checks: every value a command would otherwise take silently
// (urfave/cli parses types only; the packages' WithDefaults turns a 0 into
// the default and their Validate names Config fields, not flags) is
// checked before anything starts, and the error names the flag, its
// environment variable and, when it came from there, the config file.
// Secrets are checked for presence only: their values never reach a
// message.

// settingRule checks one setting; problem is "" when it is fine, else what
// is wrong and the fix.
type settingRule struct {
	name  string
	check func(cmd *cli.Command, name string) (problem string)
}

// checkSettings applies every rule whose flag the command has and returns
// all problems at once.
func checkSettings(cmd *cli.Command) error {
	var errs []error
	for _, r := range settingRules() {
		if !hasFlag(cmd, r.name) {
			continue
		}
		if p := r.check(cmd, r.name); p != "" {
			errs = append(errs, settingError(cmd, r.name, p))
		}
	}
	return errors.Join(errs...)
}

// settingError names the setting: flag, environment variable, and the
// config file when the value came from there.
func settingError(cmd *cli.Command, name, problem string) error {
	where := ""
	if fl := findFlag(cmd, name); fl != nil {
		if d, ok := fl.(cli.DocGenerationFlag); ok && len(d.GetEnvVars()) > 0 {
			where = strings.Join(d.GetEnvVars(), ", ")
		}
	}
	if o := settingsOf(cmd).originOf(cmd, name); o.kind == originFile {
		where += "; from config file " + o.detail
	}
	if where != "" {
		where = " (" + strings.TrimPrefix(where, "; ") + ")"
	}
	if def := flagDefault(findFlag(cmd, name)); def != "" {
		problem += " (default " + def + ")"
	}
	return fmt.Errorf("invalid setting --%s%s: %s", name, where, problem)
}

// flagDefault is the flag's default value as text ("" for an empty
// string): messages take it from the flag, so they cannot disagree.
func flagDefault(fl cli.Flag) string {
	switch f := fl.(type) {
	case *cli.StringFlag:
		return f.Value
	case *cli.IntFlag:
		return strconv.Itoa(f.Value)
	case *cli.Int64Flag:
		return strconv.FormatInt(f.Value, 10)
	case *cli.DurationFlag:
		return f.Value.String()
	}
	return ""
}

// findFlag finds name among the flags of cmd and its ancestors.
func findFlag(cmd *cli.Command, name string) cli.Flag {
	for _, c := range cmd.Lineage() {
		for _, fl := range c.Flags {
			if slices.Contains(fl.Names(), name) {
				return fl
			}
		}
	}
	return nil
}

func hasFlag(cmd *cli.Command, name string) bool { return findFlag(cmd, name) != nil }

func settingRules() []settingRule {
	return []settingRule{
		{"log-level", lowerOneOf("trace", "debug", "info", "warn", "error")},
		{"log-format", oneOf("auto", "json", "console")},
		{"password", needs("user", "the NATS password goes with a user name: set --user (NATS_USER) too, or use --token or --creds")},
		{"tlscert", pair("tlskey")},
		{"tlskey", pair("tlscert")},
		{"api-base", apiBase},
		{"appsecret", notBoth("appsecret-file")},
		{"token-source", tokenSource},
		{"transport", transport},
		{"gateway-token", notBoth("gateway-token-file")},
		{"gateway-addr", hostPort(true)},
		{"gateway-max-body-bytes", int64AtLeast(1)},
		{"gateway-max-events", intAtLeast(1)},
		{"http-addr", httpAddr},
		{"data-dir", dataDir},
		{"embedded-port", embeddedPort},
		{"consumer", consumerName},
		{"max-in-flight", intAtLeast(1)},
		{"concurrency", intAtLeast(1)},
		{"ack-wait", durationAtLeast(time.Second)},
		{"pinned-ttl", durationAtLeast(time.Second)},
		{"member-ttl", durationAtLeast(time.Second)},
		{"shutdown-timeout", durationAtLeast(0)},
		{"start-timeout", durationAtLeast(time.Second)},
		{"retry-initial", durationAtLeast(time.Millisecond)},
		{"retry-max", retryMax},
		{"retry-attempts", intAtLeast(1)},
		{"replicas", intBetween(1, pathupdate.MaxReplicas, "1 on one server, 3 on a cluster")},
		{"partitions", intBetween(1, pathupdate.MaxPartitions, "fixed when the stream is created")},
		{"max-age", durationAtLeast(0)},
		{"max-bytes", maxBytes},
		{"duplicate-window", duplicateWindow},
	}
}

func oneOf(allowed ...string) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if v := cmd.String(name); !slices.Contains(allowed, v) {
			return fmt.Sprintf("%q: use %s", v, strings.Join(allowed, ", "))
		}
		return ""
	}
}

// lowerOneOf is oneOf ignoring case (LOG_LEVEL=INFO is common).
func lowerOneOf(allowed ...string) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if v := cmd.String(name); !slices.Contains(allowed, strings.ToLower(v)) {
			return fmt.Sprintf("%q: use %s", v, strings.Join(allowed, ", "))
		}
		return ""
	}
}

func needs(other, problem string) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if cmd.String(name) != "" && cmd.String(other) == "" {
			return problem
		}
		return ""
	}
}

func pair(other string) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if cmd.String(name) != "" && cmd.String(other) == "" {
			return fmt.Sprintf("it goes with --%s: set both or neither", other)
		}
		return ""
	}
}

func notBoth(fileFlag string) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if cmd.String(name) != "" && cmd.String(fileFlag) != "" {
			return fmt.Sprintf("--%s and --%s are both set: use one (the file is the safer)", name, fileFlag)
		}
		return ""
	}
}

func intAtLeast(lowest int) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if v := cmd.Int(name); v < lowest {
			return fmt.Sprintf("%d: use at least %d", v, lowest)
		}
		return ""
	}
}

func int64AtLeast(lowest int64) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if v := cmd.Int64(name); v < lowest {
			return fmt.Sprintf("%d: use at least %d", v, lowest)
		}
		return ""
	}
}

func intBetween(lowest, highest int, why string) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if v := cmd.Int(name); v < lowest || v > highest {
			return fmt.Sprintf("%d: use %d to %d (%s)", v, lowest, highest, why)
		}
		return ""
	}
}

func durationAtLeast(lowest time.Duration) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		v := cmd.Duration(name)
		switch {
		case v >= lowest:
			return ""
		case lowest == 0:
			return fmt.Sprintf("%s: must not be negative", v)
		}
		return fmt.Sprintf("%s is too short: use at least %s", v, lowest)
	}
}

func retryMax(cmd *cli.Command, name string) string {
	if v, lo := cmd.Duration(name), cmd.Duration("retry-initial"); v < lo {
		return fmt.Sprintf("%s is below --retry-initial %s: raise it", v, lo)
	}
	return ""
}

func maxBytes(cmd *cli.Command, name string) string {
	if v := cmd.Int64(name); v == 0 || v < -1 {
		return fmt.Sprintf("%d: use -1 (unlimited) or a positive size in bytes", v)
	}
	return ""
}

func duplicateWindow(cmd *cli.Command, name string) string {
	v, age := cmd.Duration(name), cmd.Duration("max-age")
	switch {
	case v <= 0:
		return fmt.Sprintf("%s: use a positive duration", v)
	case age > 0 && v > age:
		return fmt.Sprintf("%s exceeds --max-age %s: the server refuses a window longer than the stream keeps messages", v, age)
	}
	return ""
}

func apiBase(cmd *cli.Command, name string) string {
	v := cmd.String(name)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return fmt.Sprintf("%q: use an http(s) URL without query or credentials, e.g. %s", v, pathupdate.DefaultAPIBase)
	}
	return ""
}

func tokenSource(cmd *cli.Command, name string) string {
	switch v := cmd.String(name); v {
	case "stable", "classic":
	case "file":
		if hasFlag(cmd, "access-token-file") && cmd.String("access-token-file") == "" {
			return "file needs --access-token-file (WECHAT_ACCESS_TOKEN_FILE): the file a central token service keeps current"
		}
	default:
		return fmt.Sprintf("%q: use stable (safe for many workers), classic or file", v)
	}
	return ""
}

func transport(cmd *cli.Command, name string) string {
	switch v := cmd.String(name); v {
	case pathupdate.TransportHTTPS:
	case pathupdate.TransportCloudCall:
		if hasFlag(cmd, "cloud-env") && (cmd.String("cloud-env") == "" || cmd.String("cloud-function") == "") {
			return "cloudcall needs --cloud-env (WECHAT_CLOUD_ENV) and --cloud-function (WECHAT_CLOUD_FUNCTION)"
		}
	default:
		return fmt.Sprintf("%q: use %s or %s", v, pathupdate.TransportHTTPS, pathupdate.TransportCloudCall)
	}
	return ""
}

// hostPort checks a listen address; emptyOK when "" means "off".
func hostPort(emptyOK bool) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		v := cmd.String(name)
		if v == "" && emptyOK {
			return ""
		}
		return badListenAddr(v)
	}
}

func badListenAddr(v string) string {
	_, port, err := net.SplitHostPort(v)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr == nil && n >= 0 && n <= 65535 {
			return ""
		}
	}
	return fmt.Sprintf("%q: use host:port, e.g. 127.0.0.1:9090 (port 0 picks a free one)", v)
}

func httpAddr(cmd *cli.Command, name string) string {
	if v := cmd.String(name); v != "" && v != "off" {
		return badListenAddr(v)
	}
	return ""
}

func dataDir(cmd *cli.Command, name string) string {
	if cmd.String(name) == "" && cmd.String("nats-url") == "" {
		return "empty: the embedded JetStream server (no --nats-url) needs a directory to store into"
	}
	return ""
}

func embeddedPort(cmd *cli.Command, name string) string {
	if v := cmd.Int(name); v != -1 && (v < 1 || v > 65535) {
		return fmt.Sprintf("%d: use 1 to 65535, or -1 for a free one", v)
	}
	return ""
}

// consumerName: a JetStream consumer name may not hold . * > or blanks;
// the worker appends -p<N>.
func consumerName(cmd *cli.Command, name string) string {
	v := cmd.String(name)
	ok := v != ""
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			ok = false
		}
	}
	if !ok {
		return fmt.Sprintf("%q: use letters, digits, - and _", v)
	}
	return ""
}
