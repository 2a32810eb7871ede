package cli

import (
	"errors"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/console"
	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// fieldFlags maps a config field, as a package's FieldError names it under
// the config's name here (see packageChecks), to the flag that sets it.
// It holds no rule: only where each value came from.
func fieldFlags() map[string]string {
	return map[string]string{
		"Tokens.APIBase":               "api-base",
		"Tokens.AppID":                 "appid",
		"Tokens.AppSecret":             "appsecret",
		"Tokens.Kind":                  "token-source",
		"Tokens.File":                  "access-token-file",
		"Client.APIBase":               "api-base",
		"Client.Transport":             "transport",
		"Client.CloudEnv":              "cloud-env",
		"Client.CloudFunction":         "cloud-function",
		"Worker.Consumer":              "consumer",
		"Worker.MaxInFlight":           "max-in-flight",
		"Worker.Concurrency":           "concurrency",
		"Worker.AckWait":               "ack-wait",
		"Worker.PinnedTTL":             "pinned-ttl",
		"Worker.MemberTTL":             "member-ttl",
		"Worker.ShutdownTimeout":       "shutdown-timeout",
		"Worker.RateLimit":             "rate-limit",
		"Worker.QuotaInterval":         "quota-interval",
		"Worker.Retry.InitialInterval": "retry-initial",
		"Worker.Retry.MaxInterval":     "retry-max",
		"Worker.Retry.MaxAttempts":     "retry-attempts",
		"Streams.Replicas":             "replicas",
		"Streams.Partitions":           "partitions",
		"Streams.MaxAge":               "max-age",
		"Streams.MaxBytes":             "max-bytes",
		"Streams.Duplicates":           "duplicate-window",
		"Gateway.Addr":                 "gateway-addr",
		"Gateway.Token":                "gateway-token",
		"Gateway.MaxBodyBytes":         "gateway-max-body-bytes",
		"Gateway.MaxEvents":            "gateway-max-events",
		"Health.Addr":                  "http-addr",
		"Console.Addr":                 "console-addr",
		"Console.Token":                "console-token",
		"Publisher.MaxPending":         "max-pending",
		"History.MaxAge":               "history-max-age",
		"Embedded.Port":                "embedded-port",
		"Embedded.StoreDir":            "data-dir",
	}
}

// secretFiles maps a secret's flag to the flag of the file that can hold
// it instead.
func secretFiles() map[string]string {
	return map[string]string{"appsecret": "appsecret-file", "gateway-token": "gateway-token-file", "console-token": "console-token-file", "password": "password-file"}
}

// packageChecks builds every package config cmd's settings fill and
// returns the problems their Validate finds, each naming its flag. A value
// the command line gives is checked as given: the packages' WithDefaults
// would turn a 0 into the default, which a setting must not do silently.
// Fields no setting sets are at their defaults.
func packageChecks(cmd *cli.Command) []error {
	var errs []error
	add := func(prefix string, err error) {
		fes := pathupdate.FieldErrorsOf(err)
		if err != nil && len(fes) == 0 {
			errs = append(errs, err)
		}
		flags := fieldFlags()
		for _, fe := range fes {
			flag, ok := flags[prefix+fe.Field]
			switch {
			case !ok:
				errs = append(errs, fe) // no setting sets it: say it as the package does
			case hasFlag(cmd, flag):
				errs = append(errs, settingError(cmd, flag, flagNames(flags, prefix+fe.Field, fe.Problem)))
			}
			// A field whose flag cmd lacks is at its default and not
			// used by cmd (the WeChat credentials of `status`).
		}
	}
	s, err := workerSettings(cmd, assemble.Settings{}.WithDefaults())
	if err != nil {
		errs = append(errs, err)
	}
	add("", s.Validate())
	if hasFlag(cmd, "appid") && s.Tokens.Kind != pathupdate.TokenSourceFile && s.Tokens.Kind != pathupdate.TokenSourceNone && s.Tokens.AppID == "" && s.Tokens.AppSecret == "" {
		errs = append(errs, errNoCredentials)
	}
	if hasFlag(cmd, "replicas") {
		add("Streams.", streamsConfig(cmd, pathupdate.StreamsConfig{}.WithDefaults()).Validate())
	}
	if runsGateway(cmd) {
		cfg, err := gatewayConfig(cmd, gateway.Config{}.WithDefaults())
		if err != nil {
			errs = append(errs, err)
		}
		add("Gateway.", cfg.Validate())
	}
	if runsConsole(cmd) {
		cfg, err := consoleConfig(cmd, console.Config{})
		if err != nil {
			errs = append(errs, err)
		}
		add("Console.", cfg.WithDefaults().Validate())
	}
	if hc, on := historyConfig(cmd); on {
		hc.Replicas = 0 // --replicas is checked as Streams.Replicas
		add("History.", hc.WithDefaults().Validate())
	}
	if hasFlag(cmd, "max-pending") {
		add("Publisher.", pathupdate.PublisherConfig{MaxPending: cmd.Int("max-pending")}.WithDefaults().Validate())
	}
	if addr := httpAddr(cmd); addr != "" {
		add("Health.", health.Config{Addr: addr, Registry: prometheus.NewRegistry()}.WithDefaults().Validate())
	}
	if cfg, ok := embeddedConfig(cmd); ok {
		add("Embedded.", asFieldErrors(cfg.WithDefaults().Validate()))
	}
	return errs
}

// flagNames writes, in the problem of field, the flags of the fields it
// names beside it ("below InitialInterval" -> "below --retry-initial"):
// a message about a setting speaks of settings, not Go names.
func flagNames(flags map[string]string, field, problem string) string {
	parent := field[:strings.LastIndex(field, ".")+1]
	for f, flag := range flags {
		name, ok := strings.CutPrefix(f, parent)
		if !ok || strings.Contains(name, ".") || f == field {
			continue
		}
		problem = regexp.MustCompile(`\b`+name+`\b`).ReplaceAllString(problem, "--"+flag)
	}
	return problem
}

// httpAddr is where the worker serves /metrics, /healthz and /readyz; ""
// for nowhere.
func httpAddr(cmd *cli.Command) string {
	if !hasFlag(cmd, "http-addr") || cmd.String("http-addr") == "off" {
		return ""
	}
	return cmd.String("http-addr")
}

// embeddedConfig is the embedded JetStream server's config, when cmd can
// run one. Its port is checked even with --nats-url (a wrong value is
// wrong wherever it is used); its store only without.
func embeddedConfig(cmd *cli.Command) (natsserver.Config, bool) {
	if !hasFlag(cmd, "embedded-port") {
		return natsserver.Config{}, false
	}
	c := natsserver.Config{Port: cmd.Int("embedded-port"), StoreDir: cmd.String("data-dir")}
	if cmd.String("nats-url") != "" && c.StoreDir == "" {
		c.StoreDir = "not used with --nats-url"
	}
	return c, true
}

// asFieldErrors turns the natsserver.ConfigErrors in err into FieldErrors.
func asFieldErrors(err error) error {
	var errs pathupdate.FieldErrors
	for _, e := range splitJoined(err) {
		var ce *natsserver.ConfigError
		if errors.As(e, &ce) {
			errs.Add(ce.Field, "%s", ce.Problem)
		} else {
			errs.AddError(e)
		}
	}
	return errs.Err()
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
