package cli

import (
	"context"
	"os"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/internal/demo"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "embedded NATS + sandbox + worker + sample traffic with failures, and a summary of what happened",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "waybills", Value: demo.WaybillsDefault, Usage: "waybills in the sample traffic"},
			&cli.IntFlag{Name: "events-per-waybill", Value: demo.EventsPerWaybillDefault, Usage: "trace events per waybill"},
			&cli.FloatFlag{Name: "fail-rate", Value: demo.SystemErrorRateDefault, Usage: "share of API calls the sandbox answers -1"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of traffic and faults (0: from the clock)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show the worker's log"},
			&cli.BoolFlag{Name: "keep-running", Usage: "after the summary, keep JetStream (127.0.0.1:4222), the sandbox and the worker up until Ctrl-C, to try status and deadletter on what the demo left"},
			&cli.StringFlag{Name: "transport", Value: pathupdate.TransportHTTPS, Usage: "https, or cloudcall to deliver through the sandbox's /tcb/invokecloudfunction"},
			&cli.StringFlag{Name: "token-source", Value: pathupdate.TokenSourceStable, Usage: "stable (the sandbox's AppID and AppSecret), or none to deliver through the sandbox playing WeChat Cloud Hosting's open-interface service (no token, no credentials)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			log := zerolog.Nop()
			if cmd.Bool("verbose") {
				var err error
				if log, err = logger(cmd); err != nil {
					return err
				}
			}
			rate := cmd.Float("fail-rate")
			if rate == 0 {
				rate = -1 // demo.Config reads 0 as "default"
			}
			out := cmd.Root().Writer
			f, isFile := out.(*os.File)
			_, err := demo.Run(ctx, demo.Config{
				Waybills:         cmd.Int("waybills"),
				EventsPerWaybill: cmd.Int("events-per-waybill"),
				SystemErrorRate:  rate,
				Seed:             cmd.Uint64("seed"),
				Logger:           log,
				Transport:        cmd.String("transport"),
				TokenSource:      cmd.String("token-source"),
				KeepRunning:      cmd.Bool("keep-running"),
				Progress:         out, // on a terminal one line updated in place, else a line every few seconds
				ProgressInPlace:  isFile && isTerminal(f),
			}, out)
			return err
		},
	}
}
