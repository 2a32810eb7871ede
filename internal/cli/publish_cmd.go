package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Exit codes of publish.
const (
	exitNotAcked = 1 // some publish was not acknowledged: retry those
	exitInvalid  = 2 // some lines were invalid events and were not published
)

func publishCommand() *cli.Command {
	return &cli.Command{
		Name:  "publish",
		Usage: "publish one event from flags, or many as JSON lines from --file or stdin",
		Description: "Exit status: 0 every event accepted (or a duplicate of one already accepted), 1 some publish was not\n" +
			"acknowledged by JetStream (publish those again), 2 some lines were invalid events (not published).\n" +
			"The event's token flag is --waybill-token because --token is the NATS auth token, as in the nats CLI.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "JSON lines file (- for stdin)"},
			&cli.StringFlag{Name: "waybill", Usage: "waybill_id of one event"},
			&cli.StringFlag{Name: "waybill-token", Usage: "token of one event (from the add_waybill event)"},
			&cli.Int64Flag{Name: "action-time", Usage: "Unix seconds of one event (default: now)"},
			&cli.StringFlag{Name: "action-type", Usage: "action_type of one event (e.g. 100001)"},
			&cli.StringFlag{Name: "action-msg", Usage: "action_msg of one event"},
			&cli.StringFlag{Name: "msg-id", Usage: "Nats-Msg-Id of one event (default: the event's content id)"},
			&cli.IntFlag{Name: "max-pending", Value: pathupdate.DefaultMaxPending, Usage: "publishes awaiting their ack at once"},
		},
		Action: runPublish,
	}
}

func runPublish(ctx context.Context, cmd *cli.Command) error {
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	nc, closeNATS, err := natsConn(ctx, cmd, log, "pathupdate-publish", false)
	if err != nil {
		return err
	}
	defer closeNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	p, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{MaxPending: cmd.Int("max-pending"), Logger: log})
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	if cmd.String("waybill") != "" {
		return publishOne(ctx, cmd, p, out)
	}
	var in io.Reader = cmd.Root().Reader
	if f := cmd.String("file"); f != "" && f != "-" {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer fh.Close()
		in = fh
	}
	progress := progressPrinter(cmd.Root().ErrWriter)
	sum, err := p.PublishLines(ctx, in, progress)
	progress(sum)
	if f, ok := cmd.Root().ErrWriter.(*os.File); ok && isTerminal(f) {
		fmt.Fprintln(f)
	}
	for _, le := range sum.Errors { // a decoding error can quote the line: mask
		fmt.Fprintf(cmd.Root().ErrWriter, "line %d: %v\n", le.Line, pathupdate.MaskPhonesError(le.Err))
	}
	fmt.Fprintf(out, "accepted %d, duplicate %d, invalid %d, not acknowledged %d\n", sum.Accepted, sum.Duplicates, sum.Invalid, sum.Failed)
	switch {
	case err != nil:
		return err
	case sum.Failed > 0:
		return cli.Exit(fmt.Sprintf("%d events were not acknowledged by JetStream: publish them again", sum.Failed), exitNotAcked)
	case sum.Invalid > 0:
		return cli.Exit(fmt.Sprintf("%d lines were invalid events and were not published", sum.Invalid), exitInvalid)
	}
	return nil
}

func publishOne(ctx context.Context, cmd *cli.Command, p *pathupdate.Publisher, out io.Writer) error {
	at, err := strconv.Atoi(strings.TrimSpace(cmd.String("action-type")))
	if err != nil {
		return cli.Exit(fmt.Sprintf("--action-type %q: give one of the numeric action types, e.g. 100001", cmd.String("action-type")), exitInvalid)
	}
	ev := pathupdate.Event{
		Token:      cmd.String("waybill-token"),
		WaybillID:  cmd.String("waybill"),
		ActionTime: cmd.Int64("action-time"),
		ActionType: pathupdate.ActionType(at),
		ActionMsg:  cmd.String("action-msg"),
	}
	if ev.ActionTime == 0 {
		ev.ActionTime = time.Now().Unix()
	}
	if err := ev.Validate(); err != nil {
		return cli.Exit(pathupdate.MaskPhones(err.Error()), exitInvalid)
	}
	var res pathupdate.PublishResult
	if id := cmd.String("msg-id"); id != "" {
		res, err = p.PublishWithID(ctx, ev, id)
	} else {
		res, err = p.Publish(ctx, ev)
	}
	if err != nil {
		return cli.Exit(err.Error(), exitNotAcked)
	}
	if res.Duplicate {
		fmt.Fprintf(out, "duplicate of stream sequence %d (msg id %s)\n", res.Seq, res.MsgID)
	} else {
		fmt.Fprintf(out, "accepted as stream sequence %d (msg id %s)\n", res.Seq, res.MsgID)
	}
	return nil
}

// progressPrinter rewrites one status line on a terminal; elsewhere it
// prints nothing (scripts read the final line on stdout).
func progressPrinter(w io.Writer) func(pathupdate.Summary) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return func(pathupdate.Summary) {}
	}
	var last time.Time
	return func(s pathupdate.Summary) {
		if time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(f, "\rpublished %d  duplicate %d  invalid %d  failed %d", s.Accepted, s.Duplicates, s.Invalid, s.Failed)
	}
}
