package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// confirmAbove: a replay of more records than this asks first on a
// terminal, unless --yes (a purge always asks there).
const confirmAbove = 100

const confirmRules = "On a terminal (stdin is one), every purge, and a replay of more than 100 dead letters, asks for\n" +
	"confirmation unless --yes. When stdin is not a terminal (scripts, cron), replay proceeds without asking\n" +
	"and purge refuses unless --yes is given."

func deadletterCommand() *cli.Command {
	return &cli.Command{
		Name:    "deadletter",
		Aliases: []string{"dl"},
		Usage:   "inspect, replay and purge dead letters (stream " + pathupdate.DeadLetterStream + ")",
		Description: "Filters combine: --waybill W, --errcode N, --reason R (rejected, invalid_event, retries_exhausted),\n" +
			"--since DURATION|RFC3339 (90m, 2h, 3d, 2026-01-02T15:04:05Z; compared with the record's failed_at).\n" +
			"The streams must exist: a worker creates them. NATS settings are the global flags (--nats-url, ...).\n" +
			"Semantics: docs/deadletters.md.",
		Commands: []*cli.Command{dlListCommand(), dlShowCommand(), dlStatsCommand(), dlReplayCommand(), dlPurgeCommand()},
	}
}

func filterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "waybill", Usage: "only this waybill's dead letters ('~invalid': those without a valid waybill id)"},
		&cli.StringFlag{Name: "errcode", Usage: "only this WeChat errcode (e.g. 40199, 9300507; 0: none)"},
		&cli.StringFlag{Name: "reason", Usage: "only this reason: rejected, invalid_event or retries_exhausted"},
		&cli.StringFlag{Name: "since", Usage: "only dead letters that failed since: a duration back (90m, 2h, 3d) or an RFC 3339 time"},
	}
}

// filterOf reads the filter flags; errors name the flag and what to give.
func filterOf(cmd *cli.Command) (deadletter.Filter, error) {
	f := deadletter.Filter{Waybill: cmd.String("waybill")}
	if s := cmd.String("errcode"); s != "" {
		n, err := deadletter.ParseErrCode(s)
		if err != nil {
			return f, fmt.Errorf("--errcode: %w", err)
		}
		f.ErrCode = &n
	}
	if s := cmd.String("reason"); s != "" {
		r, err := deadletter.ParseReason(s)
		if err != nil {
			return f, fmt.Errorf("--reason: %w", err)
		}
		f.Reason = r
	}
	if s := cmd.String("since"); s != "" {
		t, err := deadletter.ParseSince(s, time.Now())
		if err != nil {
			return f, fmt.Errorf("--since: %w", err)
		}
		f.Since = t
	}
	if err := f.Validate(); err != nil {
		return f, flagNamed(err, filterGoNames) // goname.go
	}
	return f, nil
}

// openStore connects to NATS (never an embedded server: the records live
// where the workers run) and returns a Store and a close function.
func openStore(ctx context.Context, cmd *cli.Command) (*deadletter.Store, func(), error) {
	st, _, closeNATS, err := openDeadLetters(ctx, cmd, false)
	return st, closeNATS, err
}

// openStoreWithHistory is openStore for the commands that change dead
// letters: it also opens the delivery history, where replays and purges
// are recorded (nil when there is no history stream). The close func
// flushes the history, then closes the connection.
func openStoreWithHistory(ctx context.Context, cmd *cli.Command) (*deadletter.Store, *history.Operator, func(), error) {
	return openDeadLetters(ctx, cmd, true)
}

func openDeadLetters(ctx context.Context, cmd *cli.Command, withHistory bool) (*deadletter.Store, *history.Operator, func(), error) {
	log, err := logger(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	if !cmd.IsSet("log-level") && log.GetLevel() < zerolog.WarnLevel {
		log = log.Level(zerolog.WarnLevel) // the command prints its own summary
	}
	s, err := openSessionWith(ctx, cmd, log, "pathupdate-deadletter")
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := deadletter.NewStore(s.js, deadletter.StoreConfig{Logger: log, TracerProvider: s.tp})
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	var h *history.Operator
	if withHistory {
		h = history.OpenOperator(ctx, s.js, log, nil)
	}
	return st, h, func() { h.Close(); s.close() }, nil
}

// interactive reports whether stdin is a terminal: only then does a
// command ask before a large change.
func interactive(cmd *cli.Command) bool {
	f, ok := cmd.Root().Reader.(*os.File)
	return ok && isTerminal(f)
}

// ttyErr is stderr when it is a terminal (for progress), else nil.
func ttyErr(cmd *cli.Command) *os.File {
	if f, ok := cmd.Root().ErrWriter.(*os.File); ok && isTerminal(f) {
		return f
	}
	return nil
}

// confirm asks question on out and reads the answer from in: only "y" or
// "yes" (any case) agree.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

func dlListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list dead letters in stream order: a table, or --json one object a line",
		Description: "--json fields: seq, waybill_id, reason, errcode, errmsg, attempts, original_subject, original_seq,\n" +
			"first_attempt, last_attempt, failed_at, replays, event (the event itself when it is JSON, else a string)\n" +
			"and event_error (why it is not a valid event, when it is not). No cap: --limit and --from-seq page.",
		Flags: append(filterFlags(),
			&cli.BoolFlag{Name: "json", Usage: "one JSON object a line"},
			&cli.BoolFlag{Name: "stats", Usage: "print counts by reason and errcode instead of the records"},
			&cli.Uint64Flag{Name: "from-seq", Usage: "start at this sequence (the next page: last seq + 1)"},
			&cli.IntFlag{Name: "limit", Usage: "stop after this many records (0: all)"},
		),
		Action: runList,
	}
}

var errLimitReached = errors.New("limit reached")

func runList(ctx context.Context, cmd *cli.Command) error {
	f, err := filterOf(cmd)
	if err != nil {
		return err
	}
	f.FromSeq = cmd.Uint64("from-seq")
	st, closeNATS, err := openStore(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeNATS()
	if cmd.Bool("stats") {
		return printStats(ctx, cmd, st, f)
	}
	out := bufio.NewWriter(cmd.Root().Writer)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	asJSON, limit, n := cmd.Bool("json"), cmd.Int("limit"), 0
	if !asJSON {
		fmt.Fprintf(out, "%-8s  %-20s  %-20s  %-17s  %8s  %8s  %7s  %s\n", "SEQ", "FAILED_AT", "WAYBILL", "REASON", "ERRCODE", "ATTEMPTS", "REPLAYS", "ERRMSG")
	}
	err = st.List(ctx, f, func(r deadletter.Record) error {
		if asJSON {
			if err := enc.Encode(r.JSON()); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(out, "%-8d  %-20s  %-20s  %-17s  %8d  %8d  %7d  %s\n", r.Seq, r.FailedAt.UTC().Format(time.RFC3339),
				clipText(orDash(r.WaybillID), 20), clipText(r.Reason, 17), r.ErrCode, r.Attempts, r.Replays, clipText(r.ErrMsg, 60))
		}
		if n++; limit > 0 && n >= limit {
			return errLimitReached
		}
		return nil
	})
	if errors.Is(err, errLimitReached) {
		err = nil
	}
	if err == nil && !asJSON {
		fmt.Fprintf(out, "%s (%s)\n", plural(n, "dead letter", "dead letters"), f)
	}
	return err
}

func dlShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one dead letter whole, its event decoded",
		ArgsUsage: "SEQ",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "one JSON object, as list --json prints it"}},
		Action:    runShow,
	}
}

func runShow(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return errors.New("show needs one argument: the dead letter's SEQ (the first column of pathupdate deadletter list)")
	}
	seq, err := strconv.ParseUint(cmd.Args().First(), 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("SEQ %q: give a dead-letter stream sequence, a positive whole number from pathupdate deadletter list", cmd.Args().First())
	}
	st, closeNATS, err := openStore(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeNATS()
	r, err := st.Get(ctx, seq)
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	if cmd.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		return enc.Encode(r.JSON())
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	for _, kv := range [][2]string{
		{"seq", strconv.FormatUint(r.Seq, 10)},
		{"waybill", orDash(r.WaybillID)},
		{"reason", r.Reason},
		{"errcode", errcodeText(r.ErrCode)},
		{"errmsg", orDash(r.ErrMsg)},
		{"attempts", strconv.Itoa(r.Attempts)},
		{"replays", strconv.Itoa(r.Replays)},
		{"original subject", r.OriginalSubject},
		{"original seq", strconv.FormatUint(r.OriginalSeq, 10)},
		{"first attempt", stamp(r.FirstAttempt)},
		{"last attempt", stamp(r.LastAttempt)},
		{"failed at", stamp(r.FailedAt)},
	} {
		fmt.Fprintf(out, "%-17s %s\n", kv[0], kv[1])
	}
	ev, err := pathupdate.DecodeEvent(r.Event)
	if err != nil {
		fmt.Fprintf(out, "event             NOT A VALID EVENT: %v\n", err)
	} else {
		fmt.Fprintf(out, "event\n  token         %s\n  waybill_id    %s\n  action_time   %d (%s)\n  action_type   %d (%s)\n  action_msg    %s\n",
			ev.Token, ev.WaybillID, ev.ActionTime, time.Unix(ev.ActionTime, 0).UTC().Format(time.RFC3339),
			int64(ev.ActionType), ev.ActionType, ev.ActionMsg)
	}
	raw := string(r.Event)
	if !utf8Valid(r.Event) {
		raw = strconv.Quote(raw)
	}
	fmt.Fprintf(out, "raw (%d bytes)\n  %s\n", len(r.Event), raw)
	return nil
}

func dlStatsCommand() *cli.Command {
	return &cli.Command{
		Name:   "stats",
		Usage:  "count dead letters by reason and errcode",
		Flags:  append(filterFlags(), &cli.BoolFlag{Name: "json", Usage: "one JSON object"}),
		Action: runStats,
	}
}

func runStats(ctx context.Context, cmd *cli.Command) error {
	f, err := filterOf(cmd)
	if err != nil {
		return err
	}
	st, closeNATS, err := openStore(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeNATS()
	return printStats(ctx, cmd, st, f)
}

func printStats(ctx context.Context, cmd *cli.Command, st *deadletter.Store, f deadletter.Filter) error {
	s, err := st.Stats(ctx, f)
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	if cmd.Bool("json") {
		byCode := make(map[string]int, len(s.ByErrCode)) // JSON keys are strings
		for c, n := range s.ByErrCode {
			byCode[strconv.Itoa(c)] = n
		}
		return json.NewEncoder(out).Encode(map[string]any{"total": s.Total, "by_reason": s.ByReason, "by_errcode": byCode, "malformed": s.Malformed})
	}
	fmt.Fprintf(out, "%s (%s)\n", plural(s.Total, "dead letter", "dead letters"), f)
	if s.Total > 0 {
		fmt.Fprintln(out, "by reason:")
		for _, k := range sortedKeys(s.ByReason) {
			fmt.Fprintf(out, "  %-28s %8d\n", k, s.ByReason[k])
		}
		fmt.Fprintln(out, "by errcode:")
		for _, k := range sortedKeys(s.ByErrCode) {
			fmt.Fprintf(out, "  %-28s %8d\n", errcodeText(k), s.ByErrCode[k])
		}
	}
	if s.Malformed > 0 {
		fmt.Fprintf(out, "%s on the dead-letter subjects (not dead letters pathupdate wrote)\n", plural(s.Malformed, "unreadable message", "unreadable messages"))
	}
	return nil
}
