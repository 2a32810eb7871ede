package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

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
			"acknowledged by JetStream (publish those again), 2 some lines were invalid events (not published) or the\n" +
			"flags were refused (nothing published). One event from flags or JSON lines from --file (or stdin): not both.\n" +
			"The event's token flag is --waybill-token because --token is the NATS auth token, as in the nats CLI.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "JSON lines file (- for stdin)"},
			&cli.StringFlag{Name: "waybill", Usage: "waybill_id of one event"},
			&cli.StringFlag{Name: "waybill-token", Usage: "token of one event (from the add_waybill event)"},
			&cli.Int64Flag{Name: "action-time", Usage: "Unix seconds of one event", DefaultText: "now"},
			&cli.StringFlag{Name: "action-type", Usage: "action_type of one event (e.g. 100001)"},
			&cli.StringFlag{Name: "action-msg", Usage: "action_msg of one event"},
			&cli.StringFlag{Name: "msg-id", Usage: "Nats-Msg-Id of one event", DefaultText: "the event's content id"},
			&cli.IntFlag{Name: "max-pending", Value: pathupdate.DefaultMaxPending, Usage: "publishes awaiting their ack at once (one per waybill); 16 × as many lines are read ahead", Sources: cli.EnvVars("PATHUPDATE_PUBLISH_MAX_PENDING")},
		},
		Action: runPublish,
	}
}

// oneEventFlags are the flags of the one-event form of publish, each with
// the event field it sets ("" for the message id, which is no field).
var oneEventFlags = []struct{ flag, field string }{
	{"waybill-token", "token"},
	{"waybill", "waybill_id"},
	{"action-time", "action_time"},
	{"action-type", "action_type"},
	{"action-msg", "action_msg"},
	{"msg-id", ""},
}

// publishForm says which form of publish the flags ask for, one event from
// flags or JSON lines, and refuses a mix: it would silently drop one of
// the two.
func publishForm(cmd *cli.Command) (oneEvent bool, err error) {
	var set []string
	for _, f := range oneEventFlags {
		if cmd.IsSet(f.flag) {
			set = append(set, "--"+f.flag)
		}
	}
	switch {
	case len(set) > 0 && cmd.IsSet("file"):
		return false, cli.Exit(fmt.Sprintf("--file and %s do not go together: publish one event with "+
			"--waybill, --waybill-token, --action-type and --action-msg, or many as JSON lines with --file (or stdin), "+
			"each line a whole event", strings.Join(set, ", ")), exitUsageCode)
	case len(set) > 0 && !cmd.IsSet("waybill"):
		return false, cli.Exit(fmt.Sprintf("%s without --waybill: one event needs --waybill, --waybill-token, "+
			"--action-type and --action-msg (JSON lines go to --file or stdin)", strings.Join(set, ", ")), exitUsageCode)
	}
	return len(set) > 0, nil
}

func runPublish(ctx context.Context, cmd *cli.Command) error {
	oneEvent, err := publishForm(cmd)
	if err != nil {
		return err
	}
	var ev pathupdate.Event
	if oneEvent { // check the flags before connecting: a usage error needs no server
		if ev, err = eventFromFlags(cmd); err != nil {
			return err
		}
	}
	s, err := openSession(ctx, cmd, "pathupdate-publish")
	if err != nil {
		return err
	}
	defer s.close()
	p, err := pathupdate.NewPublisher(s.js, pathupdate.PublisherConfig{MaxPending: cmd.Int("max-pending"), Logger: s.log, TracerProvider: s.tp})
	if err != nil {
		return err // checkSettings refused every setting NewPublisher would
	}
	out := cmd.Root().Writer
	if oneEvent {
		return publishOne(ctx, cmd, p, ev, out)
	}
	var in io.Reader = cmd.Root().Reader
	if f := cmd.String("file"); f != "" && f != "-" {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer fh.Close()
		in = fh
	} else if f, ok := in.(*os.File); ok && isTerminal(f) {
		// Someone typed `pathupdate publish` and sees nothing happen:
		// say what it waits for and how to stop.
		fmt.Fprintln(cmd.Root().ErrWriter, "reading events from stdin, one JSON object a line; end with Ctrl-D "+
			"(or publish one event with --waybill, --waybill-token, --action-type and --action-msg, or a file with --file F)")
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
		return cli.Exit(fmt.Sprintf("%s not acknowledged by JetStream: publish %s again",
			plural(sum.Failed, "event was", "events were"), plural(sum.Failed, "it", "them")), exitNotAcked)
	case sum.Invalid > 0:
		return cli.Exit(fmt.Sprintf("%s and not published", plural(sum.Invalid, "line was an invalid event", "lines were invalid events")), exitInvalid)
	case sum.Accepted+sum.Duplicates == 0:
		fmt.Fprintln(cmd.Root().ErrWriter, "nothing to publish: the input held no events (one JSON object a line)")
	}
	return nil
}

// plural returns "1 one" or "n many".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// eventFromFlags builds the event of the one-event form. Its errors name
// the flags (--waybill-token), not the JSON fields, and list every problem
// at once.
func eventFromFlags(cmd *cli.Command) (pathupdate.Event, error) {
	ev := pathupdate.Event{
		Token:      cmd.String("waybill-token"),
		WaybillID:  cmd.String("waybill"),
		ActionTime: cmd.Int64("action-time"),
		ActionMsg:  cmd.String("action-msg"),
	}
	if !cmd.IsSet("action-time") {
		ev.ActionTime = time.Now().Unix()
	}
	typeProblem := ""
	switch s := strings.TrimSpace(cmd.String("action-type")); {
	case s == "":
		typeProblem = "--action-type is missing: give one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"
	default:
		at, err := strconv.Atoi(s)
		if err != nil {
			typeProblem = fmt.Sprintf("--action-type %q is not a number: give one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002", s)
			break
		}
		ev.ActionType = pathupdate.ActionType(at)
	}
	var problems []string
	var ie *pathupdate.InvalidEventError
	if err := ev.Validate(); errors.As(err, &ie) {
		for _, p := range ie.Problems() {
			if p.Field == "action_type" && typeProblem != "" {
				continue
			}
			problems = append(problems, "--"+flagOfField(p.Field)+" "+p.Rule)
		}
	}
	if typeProblem != "" {
		problems = append(problems, typeProblem)
	}
	if len(problems) > 0 {
		return ev, cli.Exit("invalid event: "+pathupdate.MaskPhones(strings.Join(problems, "; ")), exitUsageCode)
	}
	return ev, nil
}

// flagOfField maps an event field to the flag of the one-event form.
func flagOfField(field string) string {
	for _, f := range oneEventFlags {
		if f.field == field {
			return f.flag
		}
	}
	return field
}

func publishOne(ctx context.Context, cmd *cli.Command, p *pathupdate.Publisher, ev pathupdate.Event, out io.Writer) error {
	var (
		res pathupdate.PublishResult
		err error
	)
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
