package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// globalFlags are the settings every command shares (CONTRACT.md). Flags
// override environment variables.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats-url", Usage: "NATS server URL(s), comma-separated; empty: embedded server (worker)", Sources: cli.EnvVars("NATS_URL")},
		&cli.StringFlag{Name: "creds", Usage: "NATS user credentials file", Sources: cli.EnvVars("NATS_CREDS")},
		&cli.StringFlag{Name: "user", Usage: "NATS user name", Sources: cli.EnvVars("NATS_USER")},
		&cli.StringFlag{Name: "password", Usage: "NATS password (never logged)", Sources: cli.EnvVars("NATS_PASSWORD")},
		&cli.StringFlag{Name: "token", Usage: "NATS auth token (never logged)", Sources: cli.EnvVars("NATS_TOKEN")},
		&cli.StringFlag{Name: "tlsca", Usage: "CA file to verify the NATS server", Sources: cli.EnvVars("NATS_CA")},
		&cli.StringFlag{Name: "tlscert", Usage: "client certificate for NATS TLS", Sources: cli.EnvVars("NATS_CERT")},
		&cli.StringFlag{Name: "tlskey", Usage: "client key for NATS TLS", Sources: cli.EnvVars("NATS_KEY")},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "trace, debug, info, warn, error", Sources: cli.EnvVars("PATHUPDATE_LOG_LEVEL")},
		&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "json, console, or auto (console on a terminal)", Sources: cli.EnvVars("PATHUPDATE_LOG_FORMAT")},
	}
}

// natsOptions turns the NATS settings into connect options. Passwords and
// tokens go straight into the options, never into a message.
func natsOptions(cmd *cli.Command, name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if f := cmd.String("creds"); f != "" {
		opts = append(opts, nats.UserCredentials(f))
	}
	if u := cmd.String("user"); u != "" {
		opts = append(opts, nats.UserInfo(u, cmd.String("password")))
	} else if cmd.String("password") != "" {
		return nil, fmt.Errorf("--password (NATS_PASSWORD) is set without --user (NATS_USER): set both")
	}
	if t := cmd.String("token"); t != "" {
		opts = append(opts, nats.Token(t))
	}
	if ca := cmd.String("tlsca"); ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	cert, key := cmd.String("tlscert"), cmd.String("tlskey")
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("--tlscert (NATS_CERT) and --tlskey (NATS_KEY) go together: set both or neither")
	}
	if cert != "" {
		opts = append(opts, nats.ClientCert(cert, key))
	}
	return opts, nil
}

// connect dials the NATS URL(s) of the settings.
func connect(cmd *cli.Command, url, name string) (*nats.Conn, error) {
	opts, err := natsOptions(cmd, name)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (check --nats-url / NATS_URL and that the server runs)", redactURLs(url), err)
	}
	return nc, nil
}

// redactURLs hides passwords written into NATS URLs (nats://u:p@host).
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "REDACTED@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// logger builds the process logger: JSON by default, human-readable on a
// terminal.
func logger(cmd *cli.Command) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(cmd.String("log-level")))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: use trace, debug, info, warn or error", cmd.String("log-level"))
	}
	w := cmd.Root().ErrWriter
	format := cmd.String("log-format")
	switch format {
	case "auto":
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "console"
		} else {
			format = "json"
		}
	case "json", "console":
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q: use json, console or auto", format)
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// secretSetting reads a secret from its flag/env or from its file
// flag/env, never both.
func secretSetting(cmd *cli.Command, name, fileName string) (pathupdate.Secret, error) {
	v, f := cmd.String(name), cmd.String(fileName)
	if v != "" && f != "" {
		return "", fmt.Errorf("--%s and --%s are both set: use one", name, fileName)
	}
	if f == "" {
		return pathupdate.Secret(v), nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", fileName, err)
	}
	return pathupdate.Secret(strings.TrimSpace(string(b))), nil
}
