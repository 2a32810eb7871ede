package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/sandbox"
)

func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "run a local stand-in for the WeChat API (tokens, orders, fault injection)",
		Description: "Point workers at it with --api-base http://ADDR --appid " + sandbox.DefaultAppID + " --appsecret " + sandbox.DefaultAppSecret + ".\n" +
			"With --open-interface it plays WeChat Cloud Hosting's open-interface service instead: point workers at it with --api-base http://ADDR --token-source none.\n" +
			"Admin endpoints: /sandbox/orders, /sandbox/faults, /sandbox/received, /sandbox/stats, /sandbox/revoke-tokens, /sandbox/reset, /sandbox/next-day, /sandbox/open-interface.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8086", Usage: "listen address", Sources: cli.EnvVars("PATHUPDATE_SANDBOX_ADDR")},
			&cli.StringFlag{Name: "appid", Value: sandbox.DefaultAppID, Usage: "AppID it accepts"},
			&cli.StringFlag{Name: "appsecret", Value: sandbox.DefaultAppSecret, Usage: "AppSecret it accepts"},
			&cli.BoolFlag{Name: "accept-any-waybill", Usage: "accept every waybill with any token (no order checks)"},
			&cli.StringFlag{Name: "orders-file", Usage: "orders to register: JSON lines or array of {waybill_id, token}"},
			&cli.FloatFlag{Name: "system-error-rate", Usage: "share of path/update calls answered errcode -1"},
			&cli.FloatFlag{Name: "http-5xx-rate", Usage: "share of path/update calls answered HTTP 5xx"},
			&cli.DurationFlag{Name: "latency", Usage: "added to every path/update answer"},
			&cli.IntFlag{Name: "minute-quota", Usage: "path/update calls per minute before 45011 (0: unlimited)"},
			&cli.IntFlag{Name: "second-quota", Usage: "path/update calls per second before 45011 (0: unlimited)"},
			&cli.IntFlag{Name: "daily-quota", Usage: "path/update calls per day before 45009, until POST /sandbox/next-day or /sandbox/reset (0: unlimited)"},
			&cli.DurationFlag{Name: "token-ttl", Value: 2 * time.Hour, Usage: "lifetime of issued access tokens"},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the fault dice (0: from the clock)"},
			&cli.BoolFlag{Name: "open-interface", Usage: "play WeChat Cloud Hosting's open-interface service: calls without access_token (workers: --token-source none); PUT /sandbox/open-interface sets its answer (41001, 85107, 85112, 85113, 48001, 502)", Sources: cli.EnvVars("PATHUPDATE_SANDBOX_OPEN_INTERFACE")},
		},
		Action: runSandbox,
	}
}

func runSandbox(ctx context.Context, cmd *cli.Command) error {
	cfg := sandbox.Config{
		AppID:            cmd.String("appid"),
		AppSecret:        cmd.String("appsecret"),
		TokenTTL:         cmd.Duration("token-ttl"),
		AcceptAnyWaybill: cmd.Bool("accept-any-waybill"),
		OpenInterface:    cmd.Bool("open-interface"),
		Seed:             cmd.Int64("seed"),
		Faults: sandbox.Faults{
			SystemErrorRate: cmd.Float("system-error-rate"),
			HTTP5xxRate:     cmd.Float("http-5xx-rate"),
			Latency:         sandbox.Duration(cmd.Duration("latency")),
			MinuteQuota:     cmd.Int("minute-quota"),
			SecondQuota:     cmd.Int("second-quota"),
			DailyQuota:      cmd.Int("daily-quota"),
		},
	}
	if f := cmd.String("orders-file"); f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("--orders-file: %w", err)
		}
		orders, err := sandbox.LoadOrders(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("--orders-file %s: %w", f, err)
		}
		cfg.Orders = orders
	}
	if _, err := sandbox.New(cfg); err != nil {
		return flagNamed(err, sandboxGoNames) // a settings error, before anything listens (goname.go)
	}
	srv, err := sandbox.Listen(cmd.String("addr"), cfg)
	if err != nil {
		return fmt.Errorf("--addr %s: %w (choose another address)", cmd.String("addr"), err)
	}
	defer srv.Close()
	if cfg.OpenInterface {
		fmt.Fprintf(cmd.Root().Writer, "WeChat sandbox listening on %s as Cloud Hosting's open-interface service (workers: --api-base %s --token-source none)\n", srv.URL, srv.URL)
	} else {
		fmt.Fprintf(cmd.Root().Writer, "WeChat sandbox listening on %s (appid %s)\n", srv.URL, cfg.AppID)
	}
	select {
	case <-ctx.Done():
	case <-srv.Done():
		return errors.New("the sandbox stopped serving (see the log)")
	}
	return nil
}
