package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func dlReplayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "republish dead letters to logistics.trace.<waybill>, in their original order per waybill, then remove them",
		Description: "Each event is published with Nats-Msg-Id replay-<seq>-<original seq> and removed from the dead-letter\n" +
			"stream only after its PubAck: a replay that is interrupted and run again within the trace stream's\n" +
			"duplicate window (2m by default) publishes every event once. A replayed event that fails again comes\n" +
			"back as a new dead letter with replays + 1.\n" +
			"--set-token T replaces the event's token (the 9300507 fix); it needs --waybill, or --all-waybills.\n" +
			"Events a worker would refuse as invalid_event are skipped (they would come straight back); --include-invalid\n" +
			"replays them anyway.\n" +
			confirmRules,
		Flags: append(filterFlags(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be replayed; publish and remove nothing"},
			&cli.StringFlag{Name: "set-token", Usage: "replace each event's token with this one before replaying"},
			&cli.BoolFlag{Name: "all-waybills", Usage: "allow --set-token without --waybill (every selected waybill gets the token)"},
			&cli.BoolFlag{Name: "include-invalid", Usage: "also replay events that are not valid (skipped by default: a worker dead-letters them again at once)"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
			&cli.BoolFlag{Name: "json", Usage: "with --dry-run: one JSON object a line"},
		),
		Action: runReplay,
	}
}

func runReplay(ctx context.Context, cmd *cli.Command) error {
	f, err := filterOf(cmd)
	if err != nil {
		return err
	}
	opts := deadletter.ReplayOptions{DryRun: cmd.Bool("dry-run"), SetToken: cmd.String("set-token"),
		AllowManyWaybills: cmd.Bool("all-waybills"), IncludeInvalid: cmd.Bool("include-invalid")}
	if opts.SetToken != "" && f.Waybill == "" && !opts.AllowManyWaybills {
		return deadletter.ErrSetTokenManyWaybills // before anything is read
	}
	st, hist, closeNATS, err := openStoreWithHistory(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeNATS()
	n, err := st.Count(ctx, f)
	if err != nil {
		return err
	}
	out, errOut := cmd.Root().Writer, cmd.Root().ErrWriter
	if n == 0 {
		fmt.Fprintf(out, "no dead letters match (%s): nothing to replay\n", f)
		return nil
	}
	if opts.DryRun {
		return dryRun(ctx, cmd, st, f, opts)
	}
	if n > confirmAbove && interactive(cmd) && !cmd.Bool("yes") &&
		!confirm(cmd.Root().Reader, errOut, fmt.Sprintf("Replay %d dead letters (%s) to logistics.trace.<waybill>?", n, f)) {
		return cli.Exit("nothing replayed", 1)
	}
	tty := ttyErr(cmd)
	var last time.Time
	opts.Progress = func(p deadletter.ReplayProgress) {
		hist.Replayed(p)
		if p.Skipped != nil && !errors.Is(p.Skipped, deadletter.ErrSkippedInvalid) { // those are summed up below
			if tty != nil {
				fmt.Fprint(tty, "\r\033[K")
			}
			fmt.Fprintf(errOut, "seq %d skipped: %v\n", p.Record.Seq, p.Skipped)
		}
		if tty != nil && (time.Since(last) > 100*time.Millisecond || p.Done == n) {
			last = time.Now()
			fmt.Fprintf(tty, "\rreplayed %d of %d", p.Done, n)
		}
	}
	res, err := st.Replay(ctx, f, opts)
	if tty != nil {
		fmt.Fprintln(tty)
	}
	fmt.Fprintf(out, "replayed %d (%d of them already published by an interrupted replay), skipped %d, in %s\n",
		res.Replayed, res.Duplicates, res.Skipped, res.Took.Round(time.Millisecond))
	skippedInvalid(out, res.SkippedInvalid, "skipped")
	if err != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("replay interrupted: run it again to finish (within the duplicate window nothing is published twice): %w", err)
	}
	return err
}

// dryRun prints each record as it would be replayed.
func dryRun(ctx context.Context, cmd *cli.Command, st *deadletter.Store, f deadletter.Filter, opts deadletter.ReplayOptions) error {
	out := cmd.Root().Writer
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	asJSON := cmd.Bool("json")
	var werr error
	opts.Progress = func(p deadletter.ReplayProgress) {
		if werr != nil {
			return
		}
		if asJSON {
			o := map[string]any{"seq": p.Record.Seq, "waybill_id": p.Record.WaybillID, "subject": p.Subject,
				"msg_id": p.MsgID, "replays": p.Record.Replays + 1, "event": deadletter.Record{Event: p.Event}.JSON().Event}
			if p.Skipped != nil {
				o["skipped"] = p.Skipped.Error()
			}
			werr = enc.Encode(o)
			return
		}
		if p.Skipped != nil {
			_, werr = fmt.Fprintf(out, "seq %-8d would be skipped: %v\n", p.Record.Seq, p.Skipped)
			return
		}
		_, werr = fmt.Fprintf(out, "seq %-8d -> %s  msg id %s  %s\n", p.Record.Seq, p.Subject, p.MsgID, p.Event)
	}
	res, err := st.Replay(ctx, f, opts)
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if !asJSON {
		fmt.Fprintf(out, "dry run: %d would be replayed, %d skipped; nothing was published or removed\n", res.Replayed, res.Skipped)
		skippedInvalid(out, res.SkippedInvalid, "would be skipped")
	}
	return nil
}

// skippedInvalid says how many records replay left because their event is
// not valid, and why.
func skippedInvalid(out io.Writer, n int, verb string) {
	if n == 0 {
		return
	}
	why := "because their events are not valid"
	if n == 1 {
		why = "because its event is not valid"
	}
	fmt.Fprintf(out, "%d %s %s: a worker would dead-letter them again at once (invalid_event); "+
		"fix them at the source and publish them again, or replay them anyway with --include-invalid\n", n, verb, why)
}

func dlPurgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "purge",
		Usage: "remove dead letters for good",
		Description: "Without a filter it removes every dead letter.\n" + confirmRules + "\n" +
			"In short: in a script, purge needs --yes (without it, it exits with status 2 and removes nothing).",
		Flags: append(filterFlags(),
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation (required when stdin is not a terminal)"},
		),
		Action: runPurge,
	}
}

func runPurge(ctx context.Context, cmd *cli.Command) error {
	f, err := filterOf(cmd)
	if err != nil {
		return err
	}
	st, hist, closeNATS, err := openStoreWithHistory(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeNATS()
	n, err := st.Count(ctx, f)
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	if n == 0 {
		fmt.Fprintf(out, "no dead letters match (%s): nothing to purge\n", f)
		return nil
	}
	if !cmd.Bool("yes") {
		if !interactive(cmd) {
			return cli.Exit(fmt.Sprintf("purge would remove %d dead letters (%s) for good: add --yes to confirm "+
				"(stdin is not a terminal, so purge does not ask)", n, f), 2)
		}
		// Whatever the count: a purge cannot be undone.
		if !confirm(cmd.Root().Reader, cmd.Root().ErrWriter, fmt.Sprintf("Remove %d dead letters (%s) for good?", n, f)) {
			return cli.Exit("nothing purged", 1)
		}
	}
	doomed, err := hist.BeforePurge(ctx, st, f)
	if err != nil {
		return err
	}
	removed, err := st.Purge(ctx, f)
	hist.Purged(ctx, st, doomed)
	fmt.Fprintf(out, "purged %s (%s)\n", plural(removed, "dead letter", "dead letters"), f)
	return err
}

func newJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// errcodeNames are the errcodes a dead letter usually carries.
var errcodeNames = map[int]string{
	pathupdate.ErrcodeOK:              "none",
	pathupdate.ErrcodeSystemError:     "system error",
	pathupdate.ErrcodeWaybillNotFound: "waybill not found",
	pathupdate.ErrcodeIncorrectToken:  "incorrect token",
	pathupdate.ErrcodeDataFormat:      "data format error",
	pathupdate.ErrcodeEmptyBody:       "empty body",
}

func errcodeText(code int) string {
	if name, ok := errcodeNames[code]; ok {
		return fmt.Sprintf("%d (%s)", code, name)
	}
	return strconv.Itoa(code)
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clipText cuts s to at most n characters for a table column.
func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func utf8Valid(b []byte) bool { return utf8.Valid(b) }
