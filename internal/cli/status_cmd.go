package cli

import (
	"context"
	"encoding/json"

	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/internal/status"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "streams, live workers and their partitions, backlog per partition, dead-letter counts",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			consumerFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			s, err := openSession(ctx, cmd, "pathupdate-status")
			if err != nil {
				return err
			}
			defer s.close()
			r, err := status.Gather(ctx, s.js, cmd.String("consumer"))
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				enc := json.NewEncoder(cmd.Root().Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return r.Write(cmd.Root().Writer)
		},
	}
}
