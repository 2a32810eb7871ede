// Command pathupdate delivers courier trace events from NATS JetStream to
// WeChat's logistics.updatePath API. See README.md; the commands live in
// package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pathupdate/pathupdate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
