package cli

import (
	"context"
	"io"

	"github.com/urfave/cli/v3"
)

// Run executes the command line args (args[0] is the program name) with
// stdin, stdout and stderr given, and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := New(stdin, stdout, stderr)
	if len(args) > 0 {
		if err := checkCommandWords(root, args[1:]); err != nil { // usage.go
			io.WriteString(stderr, "pathupdate: "+err.Error()+"\n")
			return exitUsageCode
		}
		if err := useSettings(root, args[1:]); err != nil { // the config file (config.go)
			io.WriteString(stderr, "pathupdate: "+err.Error()+"\n")
			return 1
		}
	}
	if err := root.Run(ctx, args); err != nil {
		if ec, ok := err.(cli.ExitCoder); ok {
			if msg := ec.Error(); msg != "" {
				io.WriteString(stderr, "pathupdate: "+msg+"\n")
			}
			return ec.ExitCode()
		}
		io.WriteString(stderr, "pathupdate: "+err.Error()+"\n")
		return 1
	}
	return 0
}

// New builds the root command.
func New(stdin io.Reader, stdout, stderr io.Writer) *cli.Command {
	root := &cli.Command{
		Name:           "pathupdate",
		Usage:          "deliver courier trace events from NATS JetStream to WeChat logistics.updatePath",
		Reader:         stdin,
		Writer:         stdout,
		ErrWriter:      stderr,
		Flags:          append(globalFlags(), versionFlag()),
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // Run prints and exits
		Commands: []*cli.Command{
			workerCommand(),
			publishCommand(),
			sandboxCommand(),
			demoCommand(),
			gatewayCommand(),
			deadletterCommand(),
			statusCommand(),
			consoleCommand(),
			traceCommand(),
			pauseCommand(),
			resumeCommand(),
		},
	}
	finishCommands(root, root.Name) // usage.go: examples, usage errors, unknown commands
	return root
}
