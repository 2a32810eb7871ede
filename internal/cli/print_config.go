package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
)

// redacted is how --print-config shows a secret that is set.
const redacted = "[redacted]"

// secretFlags hold credentials: --print-config never shows their values.
// (Their *-file variants hold paths, which are shown.)
func secretFlags() []string {
	return []string{"password", "token", "appsecret", "gateway-token", "console-token"}
}

func printConfigFlag() cli.Flag {
	return &cli.BoolFlag{Name: "print-config", Usage: "print the effective settings (secrets redacted) and where each came from, check them, and exit"}
}

// printConfig writes every setting of cmd (its own flags and the global
// ones) with its effective value and origin: flag, env VAR, file PATH or
// default. Secrets show as [redacted] when set; a password written into
// --nats-url is replaced too. It then checks the settings as a start
// would, so that a wrong one fails here with the same message.
func printConfig(cmd *cli.Command, w io.Writer) error {
	s := settingsOf(cmd)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "# pathupdate %s: effective settings (precedence: flag > env > config file > default)\n", cmd.Name)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, fl := range settingFlags(cmd) {
		name := fl.Names()[0]
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, displayValue(name, cmd.Value(name)), s.originOf(cmd, name))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return checkSettings(cmd)
}

// settingFlags are the global flags then cmd's own, without help and
// --print-config.
func settingFlags(cmd *cli.Command) []cli.Flag {
	var out []cli.Flag
	lineage := cmd.Lineage()
	for i := len(lineage) - 1; i >= 0; i-- {
		for _, fl := range lineage[i].Flags {
			switch fl.Names()[0] {
			case "help", "print-config":
				continue
			}
			if _, ok := fl.(cli.DocGenerationFlag); ok {
				out = append(out, fl)
			}
		}
	}
	return out
}

// displayValue formats a flag value for --print-config.
func displayValue(name string, v any) string {
	for _, s := range secretFlags() {
		if name == s {
			if v == "" {
				return `""`
			}
			return redacted
		}
	}
	switch x := v.(type) {
	case string:
		if name == "nats-url" {
			x = redactURLs(x)
		}
		return strconv.Quote(x)
	case time.Duration:
		return x.String()
	}
	return fmt.Sprint(v)
}
