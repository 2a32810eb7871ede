package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:      "trace",
		Usage:     "a waybill's timeline: waiting, retrying, delivered, dead-lettered, replayed, purged",
		ArgsUsage: "WAYBILL",
		Description: "Answers \"did WeChat get it?\" for one waybill, oldest step first, from the delivery history\n" +
			"(LOGISTICS_HISTORY), the dead-letter stream and the events still in the trace stream.\n" +
			"Exit status: 0 something was found, 1 no record within the history's age, 2 not a waybill id.\n\n" +
			"Examples:\n" +
			"  pathupdate trace SF1234567890\n" +
			"  pathupdate trace --json SF1234567890 | jq 'select(.state == \"dead_lettered\")'",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object a line"},
		},
		Action: runTrace,
	}
}

func runTrace(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return cli.Exit("trace takes one waybill id, e.g. pathupdate trace SF1234567890", 2)
	}
	waybill := cmd.Args().First()
	if !pathupdate.ValidWaybillID(waybill) {
		return cli.Exit(fmt.Sprintf("%q is not a waybill id: 1 to %d characters of A-Z a-z 0-9 - _", waybill, pathupdate.MaxWaybillIDLen), 2)
	}
	s, err := openSession(ctx, cmd, "pathupdate-trace")
	if err != nil {
		return err
	}
	defer s.close()
	tl, err := history.NewStore(s.js, nil).Timeline(ctx, waybill)
	switch {
	case errors.Is(err, history.ErrNoHistory):
		return cli.Exit(err.Error()+": no delivery history to read; `pathupdate deadletter list --waybill "+waybill+"` still shows its dead letters", 1)
	case err != nil:
		return err
	}
	if len(tl.Steps) == 0 {
		since := "ever"
		if !tl.Since.IsZero() {
			since = "since " + tl.Since.UTC().Format(time.RFC3339) + " (the history's age)"
		}
		return cli.Exit(fmt.Sprintf("no record of waybill %s %s", waybill, since), 1)
	}
	if cmd.Bool("json") {
		enc := json.NewEncoder(cmd.Root().Writer)
		for _, s := range tl.Steps {
			s.ActionMsg, s.ErrMsg = pathupdate.MaskPhones(s.ActionMsg), pathupdate.MaskPhones(s.ErrMsg)
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
		return nil
	}
	return writeTimeline(cmd.Root().Writer, tl)
}

// writeTimeline prints tl for a person: one line a step, then how to act
// on what is dead-lettered.
func writeTimeline(out io.Writer, tl history.Timeline) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "AT\tSEQ\tACTION\tSTATE\tATTEMPTS\tERRCODE\tDETAIL\n")
	var dead []uint64
	for _, s := range tl.Steps {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\n", s.At.UTC().Format("2006-01-02 15:04:05.000"), s.Seq,
			actionText(s), s.State, s.Attempts, s.ErrCode, detail(s))
		if s.State == history.DeadLettered && s.DeadLetterSeq != 0 {
			dead = append(dead, s.DeadLetterSeq)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(dead) > 0 {
		_, err := fmt.Fprintf(out, "\nDead letters of %s: replay them with `pathupdate deadletter replay --waybill %s` (see `pathupdate deadletter show SEQ` first)\n",
			tl.WaybillID, tl.WaybillID)
		return err
	}
	return nil
}

func actionText(s history.Step) string {
	if s.ActionType == 0 {
		return "-"
	}
	msg := s.ActionMsg
	if len([]rune(msg)) > 24 {
		msg = string([]rune(msg)[:23]) + "…"
	}
	return fmt.Sprintf("%d %q", s.ActionType, pathupdate.MaskPhones(msg))
}

func detail(s history.Step) string {
	var parts []string
	switch s.State {
	case history.Retrying:
		parts = append(parts, "next attempt "+s.NextAttempt.UTC().Format("15:04:05.000"))
	case history.DeadLettered:
		parts = append(parts, fmt.Sprintf("dead letter %d (%s)", s.DeadLetterSeq, s.Reason))
	case history.Replayed:
		parts = append(parts, fmt.Sprintf("dead letter %d of seq %d republished as seq %d", s.DeadLetterSeq, s.ReplayOf, s.Seq))
	case history.Purged:
		parts = append(parts, fmt.Sprintf("dead letter %d removed", s.DeadLetterSeq))
	case history.Delivered:
		if s.LatencyMS > 0 {
			parts = append(parts, fmt.Sprintf("%s after publish", (time.Duration(s.LatencyMS)*time.Millisecond).String()))
		}
	}
	if s.ErrMsg != "" && s.ErrCode != 0 {
		parts = append(parts, pathupdate.MaskPhones(s.ErrMsg))
	}
	if s.Worker != "" {
		parts = append(parts, "by "+s.Worker)
	}
	return strings.Join(parts, "; ")
}
