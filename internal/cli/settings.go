package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/worker"
)

// globalFlags are the settings every command shares (docs/contract.md). Flags
// override environment variables.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats-url", Usage: "NATS server URL(s), comma-separated; empty: embedded server (worker)", Sources: cli.EnvVars("NATS_URL")},
		&cli.StringFlag{Name: "creds", Usage: "NATS user credentials file", Sources: cli.EnvVars("NATS_CREDS")},
		&cli.StringFlag{Name: "user", Usage: "NATS user name", Sources: cli.EnvVars("NATS_USER")},
		&cli.StringFlag{Name: "password", Usage: "NATS password (never logged)", Sources: cli.EnvVars("NATS_PASSWORD")},
		&cli.StringFlag{Name: "password-file", Usage: "file holding the NATS password", TakesFile: true, Sources: cli.EnvVars("NATS_PASSWORD_FILE")},
		&cli.StringFlag{Name: "token", Usage: "NATS auth token (never logged)", Sources: cli.EnvVars("NATS_TOKEN")},
		&cli.StringFlag{Name: "tlsca", Usage: "CA file to verify the NATS server", Sources: cli.EnvVars("NATS_CA")},
		&cli.StringFlag{Name: "tlscert", Usage: "client certificate for NATS TLS", Sources: cli.EnvVars("NATS_CERT")},
		&cli.StringFlag{Name: "tlskey", Usage: "client key for NATS TLS", Sources: cli.EnvVars("NATS_KEY")},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "trace, debug, info, warn, error", Sources: cli.EnvVars("PATHUPDATE_LOG_LEVEL")},
		&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "json, console, or auto (console on a terminal)", Sources: cli.EnvVars("PATHUPDATE_LOG_FORMAT")},
		&cli.StringFlag{Name: configFlagName, Usage: "YAML file of settings, keys are the flag names (flag > env > file > default)", TakesFile: true, Sources: cli.EnvVars(configEnv)},
	}
}

// natsOptions turns the NATS settings into connect options. Passwords and
// tokens go straight into the options, never into a message.
func natsOptions(cmd *cli.Command, name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if f := cmd.String("creds"); f != "" {
		opts = append(opts, nats.UserCredentials(f))
	}
	password, err := secretSetting(cmd, "password", "password-file")
	if err != nil {
		return nil, err
	}
	if u := cmd.String("user"); u != "" {
		opts = append(opts, nats.UserInfo(u, password.Reveal()))
	} else if password != "" {
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

// connect dials the NATS URL(s) of the settings. Losing and regaining the
// connection later is logged (nats.go reconnects by itself).
func connect(cmd *cli.Command, log zerolog.Logger, url, name string) (*nats.Conn, error) {
	opts, err := natsOptions(cmd, name)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close: nats.go reports it as a disconnect too
			}
			log.Warn().Err(err).Msg("NATS connection lost; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS connection restored")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if worker.IsPinnedAdvisoriesRefusal(err) {
				log.Warn().Err(err).Msg("this NATS user may not subscribe to " + worker.PinnedAdvisories +
					": a worker then notices a partition's pin moving to another worker (after a node loss) only when a pull is refused, " +
					"seconds later; grant the subscription (README, \"Running in production\")")
				return
			}
			e := log.Warn().Err(err)
			if sub != nil {
				e = e.Str("subject", sub.Subject)
			}
			e.Msg("NATS error")
		}),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (%s)", redactURLs(url), err, connectHint(cmd, url, err))
	}
	return nc, nil
}

// connectHint says which settings to check for a failed connect. It names
// settings, never their values (the user name aside: it is no secret and
// tells which account was refused).
func connectHint(cmd *cli.Command, url string, err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		msg       = err.Error()
	)
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		switch {
		case cmd.String("creds") != "":
			return "the server refused the credentials: check --creds (NATS_CREDS)"
		case cmd.String("user") != "":
			return fmt.Sprintf("the server refused user %q: check --user and --password (NATS_USER and NATS_PASSWORD)", cmd.String("user"))
		case cmd.String("token") != "":
			return "the server refused the token: check --token (NATS_TOKEN)"
		case redactURLs(url) != url:
			return "the server refused the user and password in --nats-url (NATS_URL): check them, or set --user and --password (NATS_USER and NATS_PASSWORD) instead"
		}
		return "the server requires authentication: set --user and --password (NATS_USER and NATS_PASSWORD), --token (NATS_TOKEN) or --creds (NATS_CREDS)"
	case errors.As(err, &unknownCA):
		if cmd.String("tlsca") == "" {
			return "TLS: the server's certificate is not signed by a CA this system trusts: give its CA with --tlsca (NATS_CA)"
		}
		return "TLS: the server's certificate is not signed by the CA in --tlsca (NATS_CA): give the CA that signed it"
	case errors.As(err, &hostname):
		return "TLS: the server's certificate is not for the host in --nats-url (NATS_URL): connect by a name or address the certificate lists"
	case errors.As(err, &invalid), errors.As(err, &verify):
		return "TLS: the server's certificate is not valid (expired, or not for a server): check it and --tlsca (NATS_CA)"
	case errors.As(err, &alert), strings.Contains(msg, "remote error: tls"), strings.Contains(msg, "after TLS handshake"):
		// With TLS 1.3 the server checks the client's certificate after
		// the handshake: a refusal shows as an alert or a closed connection.
		return "TLS: the server refused the handshake: if it verifies clients, set --tlscert and --tlskey (NATS_CERT and NATS_KEY) to a certificate signed by the CA it trusts"
	case errors.Is(err, nats.ErrSecureConnRequired):
		return "the server requires TLS: use a tls:// URL or set --tlsca (NATS_CA)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "TLS was asked for (tls:// URL, --tlsca, --tlscert) but the server does not offer it: check the URL and port"
	case strings.Contains(msg, "rootCA"), strings.Contains(msg, "client certificate"):
		return "check the files of --tlsca, --tlscert and --tlskey (NATS_CA, NATS_CERT, NATS_KEY)"
	}
	return "check --nats-url (NATS_URL) and that the server runs"
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
	// Only the documented levels: ParseLevel would also take numbers,
	// "panic" and "disabled", which would silence the log by accident.
	var lvl zerolog.Level
	switch strings.ToLower(cmd.String("log-level")) {
	case "trace":
		lvl = zerolog.TraceLevel
	case "debug":
		lvl = zerolog.DebugLevel
	case "info":
		lvl = zerolog.InfoLevel
	case "warn":
		lvl = zerolog.WarnLevel
	case "error":
		lvl = zerolog.ErrorLevel
	default:
		return zerolog.Nop(), fmt.Errorf("--log-level (PATHUPDATE_LOG_LEVEL) %q: use trace, debug, info, warn or error", cmd.String("log-level"))
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
		return zerolog.Nop(), fmt.Errorf("--log-format (PATHUPDATE_LOG_FORMAT) %q: use json, console or auto", format)
	}
	if format == "console" {
		f, ok := w.(*os.File)
		colour := ok && isTerminal(f) // no escape codes in a file or a pipe
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !colour}
	}
	return zerolog.New(w).Level(lvl).Hook(millisecondTimestamp{}), nil
}

// logTimeFormat is RFC 3339 with milliseconds: events a few milliseconds
// apart (a retry, an ack, a takeover) must keep their order in a log.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// millisecondTimestamp stamps each log line with logTimeFormat. zerolog's
// own Timestamp() formats with the package-level zerolog.TimeFieldFormat
// (whole seconds by default); a hook keeps the format with the loggers
// this package builds instead of changing a global every package shares.
// The console writer parses the field as RFC 3339, which takes the
// fraction, and prints its own TimeFormat.
type millisecondTimestamp struct{}

func (millisecondTimestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(logTimeFormat))
}
