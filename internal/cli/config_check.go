package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/worker"
)

// Setting checks: every value a command would otherwise take silently is
// checked before anything starts, and the error names the flag, its
// environment variable and, when it came from there, the config file.
//
// The rules are the packages': the command builds each package's config
// from its settings (packageChecks), the package's Validate decides, and
// each pathupdate.FieldError it reports is translated here to the flag
// that set the field (fieldFlags). Only rules about the command line
// itself (flag combinations, logging, the NATS connection's files, the
// start timeout) live here (cliRules). Secrets are checked for presence
// and form only: their values never reach a message.

// settingRule checks one setting; problem is "" when it is fine, else what
// is wrong and the fix.
type settingRule struct {
	name  string
	check func(cmd *cli.Command, name string) (problem string)
}

// checkSettings runs the command-line rules of every flag the command has
// and the packages' checks of the configs its settings fill, and returns
// all problems at once. A start and --print-config both run it, so
// --print-config fails exactly when a start would refuse before it
// connects.
func checkSettings(cmd *cli.Command) error {
	var errs []error
	for _, r := range cliRules() {
		if !hasFlag(cmd, r.name) {
			continue
		}
		if p := r.check(cmd, r.name); p != "" {
			if def := flagDefault(findFlag(cmd, r.name)); def != "" {
				p += " (default " + def + ")"
			}
			errs = append(errs, settingError(cmd, r.name, p))
		}
	}
	errs = append(errs, packageChecks(cmd)...)
	return errors.Join(errs...)
}

// settingError names the setting: flag, environment variable, and the
// config file when the value came from there. A secret that can also come
// from a file names the file's setting when that is set, else both.
func settingError(cmd *cli.Command, name, problem string) error {
	if file, ok := secretFiles()[name]; ok && hasFlag(cmd, file) {
		switch {
		case cmd.String(file) != "" && cmd.String(name) == "":
			name = file
		case cmd.String(name) == "":
			return fmt.Errorf("invalid setting %s or %s: %s", describeSetting(cmd, name), describeSetting(cmd, file), problem)
		}
	}
	return fmt.Errorf("invalid setting %s: %s", describeSetting(cmd, name), problem)
}

// describeSetting is "--name (ENV; from config file F)".
func describeSetting(cmd *cli.Command, name string) string {
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
	return "--" + name + where
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

// cliRules are the checks of settings no package owns: logging, the NATS
// connection (its options are built here), flag combinations and the
// start timeout.
func cliRules() []settingRule {
	return []settingRule{
		{"log-level", lowerOneOf("trace", "debug", "info", "warn", "error")},
		{"log-format", oneOf("auto", "json", "console")},
		{"password", needs("user", "the NATS password goes with a user name: set --user (NATS_USER) too, or use --token or --creds")},
		{"password-file", needs("user", "the NATS password goes with a user name: set --user (NATS_USER) too, or use --token or --creds")},
		{"password", notBoth("password-file")},
		{"tlscert", pair("tlskey")},
		{"tlskey", pair("tlscert")},
		{"creds", readableFile},
		{"tlsca", readableFile},
		{"tlscert", readableFile},
		{"tlskey", readableFile},
		{"appsecret", notBoth("appsecret-file")},
		{"gateway-token", notBoth("gateway-token-file")},
		{"console-token", notBoth("console-token-file")},
		{"start-timeout", durationAtLeast(time.Second)},
		{"rate-limit", rateLimitSetting},
	}
}

// rateLimitSetting is worker.ParseRateLimit's verdict on --rate-limit.
func rateLimitSetting(cmd *cli.Command, name string) string {
	if _, _, err := worker.ParseRateLimit(cmd.String(name)); err != nil {
		return err.Error()
	}
	return ""
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

// readableFile: a file the NATS connection reads when it connects must be
// there and readable, or the start fails anyway, later.
func readableFile(cmd *cli.Command, name string) string {
	p := cmd.String(name)
	if p == "" {
		return ""
	}
	f, err := os.Open(p)
	if err != nil {
		return err.Error()
	}
	f.Close()
	return ""
}

func durationAtLeast(lowest time.Duration) func(*cli.Command, string) string {
	return func(cmd *cli.Command, name string) string {
		if v := cmd.Duration(name); v < lowest {
			return fmt.Sprintf("%s is too short: use at least %s", v, lowest)
		}
		return ""
	}
}
