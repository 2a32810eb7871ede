package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/internal/console"
	"github.com/pathupdate/pathupdate/worker"
)

// consoleShutdownTimeout bounds how long pages and actions in progress may
// finish after a signal (a replay begun is finished even after it).
const consoleShutdownTimeout = 15 * time.Second

func consoleCommand() *cli.Command {
	return &cli.Command{
		Name:  "console",
		Usage: "the operator's web console: workers and lag, dead letters to inspect, replay and purge, waybill timelines, pause and resume",
		Description: "Serves the console on --console-addr (loopback by default; anywhere else it requires --console-token or\n" +
			"--console-token-file, asked for on a login page). --console-read-only shows everything and offers no action.\n" +
			"It creates no streams: a worker does. A worker can serve it too with --console-addr. See docs/console.md.",
		Flags: append(consoleFlags(console.AddrDefault),
			&cli.StringFlag{Name: "consumer", Value: worker.ConsumerDefault, Usage: "the workers' consumer name prefix", Sources: cli.EnvVars("PATHUPDATE_CONSUMER")},
			printConfigFlag()),
		Action: runConsole,
	}
}

// consoleFlags are the console's settings. `pathupdate console` listens
// on defaultAddr unless told otherwise; a worker passes "" so that it
// serves the console only when --console-addr is set.
func consoleFlags(defaultAddr string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "console-addr", Value: defaultAddr, Usage: "where the operator's web console listens (host:port)", Sources: cli.EnvVars("PATHUPDATE_CONSOLE_ADDR")},
		&cli.StringFlag{Name: "console-token", Usage: "token operators log in to the console with (required off loopback; never logged)", Sources: cli.EnvVars("PATHUPDATE_CONSOLE_TOKEN")},
		&cli.StringFlag{Name: "console-token-file", Usage: "file holding the console token", Sources: cli.EnvVars("PATHUPDATE_CONSOLE_TOKEN_FILE")},
		&cli.BoolFlag{Name: "console-read-only", Usage: "the console shows everything and offers no action", Sources: cli.EnvVars("PATHUPDATE_CONSOLE_READ_ONLY")},
	}
}

// runsConsole reports whether cmd serves the console.
func runsConsole(cmd *cli.Command) bool {
	return cmd.Name == "console" || hasFlag(cmd, "console-addr") && cmd.String("console-addr") != ""
}

// consoleConfig takes the console settings into base; the error is a
// token file that cannot be read. checkSettings validates the result.
func consoleConfig(cmd *cli.Command, base console.Config) (console.Config, error) {
	c := base
	take(cmd, "console-addr", &c.Addr, cmd.String)
	take(cmd, "console-read-only", &c.ReadOnly, cmd.Bool)
	take(cmd, "consumer", &c.Consumer, cmd.String)
	var err error
	c.Token, err = secretSetting(cmd, "console-token", "console-token-file")
	return c, err
}

// startConsole starts the console of the settings on js (a handle the
// caller owns and closes after the console stopped).
func startConsole(ctx context.Context, cmd *cli.Command, log zerolog.Logger, js jetstream.JetStream) (*console.Console, error) {
	cfg, err := consoleConfig(cmd, console.Config{})
	if err != nil {
		return nil, err
	}
	cfg.Logger = log.With().Str("component", "console").Logger()
	c, err := console.New(js, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("--console-addr: %w", err)
	}
	cfg.Logger.Info().Str("url", c.URL()).Bool("read_only", cfg.ReadOnly).Bool("login", cfg.Token != "").Msg("serving the operator's console")
	return c, nil
}

// stopConsole lets pages and actions in progress finish, for at most
// consoleShutdownTimeout.
func stopConsole(c *console.Console, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), consoleShutdownTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		log.Warn().Err(err).Msg("console shutdown")
	}
}

func runConsole(ctx context.Context, cmd *cli.Command) error {
	if cmd.Bool("print-config") {
		return printConfig(cmd, cmd.Root().Writer)
	}
	s, err := openSession(ctx, cmd, "pathupdate-console")
	if err != nil {
		return err
	}
	defer s.close()
	c, err := startConsole(ctx, cmd, s.log, s.js)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.Root().Writer, "console on %s\n", c.URL())
	select {
	case <-ctx.Done():
		s.log.Info().Msg("signal received: stopping the console")
		stopConsole(c, s.log)
		return nil
	case <-c.Done():
		return fmt.Errorf("console stopped serving: %w", c.Err())
	}
}
