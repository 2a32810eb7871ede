package cli

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// errNoCredentials follows the credentials' own errors when neither is
// set: it says every way to start.
var errNoCredentials = errors.New("no WeChat credentials: set WECHAT_APPID and WECHAT_APPSECRET (or --appid and --appsecret / --appsecret-file), " +
	"or use --token-source file with --access-token-file, or --token-source none in WeChat Cloud Hosting (its open-interface service), or run with --sandbox to try it against a local sandbox")

// workerSettings takes the worker's settings that cmd has into base: the
// WeChat client and token source, the worker and its retry policy. With
// --sandbox the credentials are the in-process sandbox's (its URL is known
// once it runs). The error is a secret file that cannot be read; the
// settings' own checks are assemble.Settings.Validate.
func workerSettings(cmd *cli.Command, base assemble.Settings) (assemble.Settings, error) {
	s := base
	take(cmd, "api-base", &s.Tokens.APIBase, cmd.String)
	take(cmd, "api-base", &s.Client.APIBase, cmd.String)
	take(cmd, "appid", &s.Tokens.AppID, cmd.String)
	take(cmd, "token-source", &s.Tokens.Kind, cmd.String)
	take(cmd, "access-token-file", &s.Tokens.File, cmd.String)
	take(cmd, "transport", &s.Client.Transport, cmd.String)
	take(cmd, "cloud-env", &s.Client.CloudEnv, cmd.String)
	take(cmd, "cloud-function", &s.Client.CloudFunction, cmd.String)
	s.Worker = workerConfig(cmd, s.Worker)
	var err error
	if hasFlag(cmd, "appsecret") {
		s.Tokens.AppSecret, err = secretSetting(cmd, "appsecret", "appsecret-file")
	}
	if hasFlag(cmd, "sandbox") && cmd.Bool("sandbox") {
		if s.Tokens.Kind == pathupdate.TokenSourceNone {
			// The sandbox plays the open-interface service; its URL, known
			// once it runs, replaces this stand-in.
			s.Tokens.APIBase, s.Client.APIBase = pathupdate.OpenInterfaceAPIBase, pathupdate.OpenInterfaceAPIBase
			return s, err
		}
		s.Tokens.Kind = pathupdate.TokenSourceStable
		s.Tokens.AppID, s.Tokens.AppSecret = sandbox.DefaultAppID, pathupdate.Secret(sandbox.DefaultAppSecret)
	}
	return s, err
}

// warnUnusedCredentials says, with --token-source none, that the worker
// calls with no token, and warns about settings it then does not use
// (--appid, --appsecret): harmless, but whoever set them may believe they
// are in use.
func warnUnusedCredentials(log zerolog.Logger, c pathupdate.TokenSourceConfig) {
	if c.Kind == pathupdate.TokenSourceNone {
		log.Info().Str("api_base", c.APIBase).Msg("calling logistics.updatePath with no access_token, through WeChat Cloud Hosting's open-interface service")
	}
	flags := map[string]string{"AppID": "--appid (WECHAT_APPID)", "AppSecret": "--appsecret / --appsecret-file (WECHAT_APPSECRET, WECHAT_APPSECRET_FILE)",
		"File": "--access-token-file (WECHAT_ACCESS_TOKEN_FILE)"}
	for _, f := range c.Unused() {
		log.Warn().Str("setting", flags[f]).Str("token_source", c.Kind).
			Msg("setting unused: with --token-source none the worker calls through WeChat Cloud Hosting's open-interface service, with no token and no credentials; remove it")
	}
}

// workerConfig takes the worker's own settings that cmd has into base.
func workerConfig(cmd *cli.Command, base worker.Config) worker.Config {
	c := base
	take(cmd, "consumer", &c.Consumer, cmd.String)
	take(cmd, "max-in-flight", &c.MaxInFlight, cmd.Int)
	take(cmd, "concurrency", &c.Concurrency, cmd.Int)
	take(cmd, "ack-wait", &c.AckWait, cmd.Duration)
	take(cmd, "pinned-ttl", &c.PinnedTTL, cmd.Duration)
	take(cmd, "member-ttl", &c.MemberTTL, cmd.Duration)
	take(cmd, "shutdown-timeout", &c.ShutdownTimeout, cmd.Duration)
	take(cmd, "retry-initial", &c.Retry.InitialInterval, cmd.Duration)
	take(cmd, "retry-max", &c.Retry.MaxInterval, cmd.Duration)
	take(cmd, "retry-attempts", &c.Retry.MaxAttempts, cmd.Int)
	take(cmd, "quota-interval", &c.QuotaInterval, cmd.Duration)
	if hasFlag(cmd, "rate-limit") {
		// A value ParseRateLimit refuses was refused by checkSettings.
		c.RateLimit, c.RateLimitAuto, _ = worker.ParseRateLimit(cmd.String("rate-limit"))
	}
	return c
}

// streamsConfig takes the stream settings that cmd has into base.
func streamsConfig(cmd *cli.Command, base pathupdate.StreamsConfig) pathupdate.StreamsConfig {
	c := base
	take(cmd, "replicas", &c.Replicas, cmd.Int)
	take(cmd, "partitions", &c.Partitions, cmd.Int)
	take(cmd, "max-age", &c.MaxAge, cmd.Duration)
	take(cmd, "max-bytes", &c.MaxBytes, cmd.Int64)
	take(cmd, "duplicate-window", &c.Duplicates, cmd.Duration)
	return c
}

// historyConfig is the delivery history's stream config; on is false when
// --history-max-age is 0 (history off) or cmd has no such setting.
func historyConfig(cmd *cli.Command) (c history.StreamConfig, on bool) {
	if !hasFlag(cmd, "history-max-age") || cmd.Duration("history-max-age") == 0 {
		return c, false
	}
	c.MaxAge = cmd.Duration("history-max-age")
	take(cmd, "replicas", &c.Replicas, cmd.Int)
	return c, true
}

// take sets *dst to the value of cmd's flag name, when cmd has the flag.
func take[T any](cmd *cli.Command, name string, dst *T, get func(string) T) {
	if hasFlag(cmd, name) {
		*dst = get(name)
	}
}

// runsGateway: the gateway command, or a worker with --gateway-addr.
func runsGateway(cmd *cli.Command) bool {
	return cmd.Name == "gateway" || hasFlag(cmd, "gateway-addr") && cmd.String("gateway-addr") != ""
}

// secretSetting reads a secret from its flag/env or from its file
// flag/env (both set is refused by a rule of checkSettings; the flag
// wins here). A file is read once per run, through
// pathupdate.ReadSecretFile: bounded in size, and a warning (once, without
// the content) when group or others may read it.
func secretSetting(cmd *cli.Command, name, fileName string) (pathupdate.Secret, error) {
	v, f := cmd.String(name), cmd.String(fileName)
	if f == "" || v != "" {
		return pathupdate.Secret(v), nil
	}
	r := settingsOf(cmd).secretFile(f, pathupdate.ReadSecretFile)
	if r.err != nil {
		return "", settingError(cmd, fileName, r.err.Error())
	}
	if r.exposed && r.first {
		warn(cmd, fmt.Sprintf("--%s %s is readable by group or others: make it readable by its owner only (chmod 600)", fileName, f))
	}
	return r.secret, nil
}

// warn writes a warning to the log (or, when the log settings are wrong,
// as a plain line).
func warn(cmd *cli.Command, msg string) {
	if log, err := logger(cmd); err == nil {
		log.Warn().Msg(msg)
		return
	}
	fmt.Fprintln(cmd.Root().ErrWriter, "warning: "+msg)
}
