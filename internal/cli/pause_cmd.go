package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/worker"
)

func consumerFlag() cli.Flag {
	return &cli.StringFlag{Name: "consumer", Value: worker.ConsumerDefault, Usage: "the workers' consumer name prefix", Sources: cli.EnvVars("PATHUPDATE_CONSUMER")}
}

func pauseCommand() *cli.Command {
	return &cli.Command{
		Name:  "pause",
		Usage: "pause delivery on every partition (events wait in JetStream) until `pathupdate resume` or a time",
		Description: "Every worker stops being handed events at once; what they hold already is still delivered.\n" +
			"The pause outlives worker restarts, and partitions a worker creates later start paused.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "until", Usage: "end the pause by itself at this RFC 3339 time (2026-11-29T22:00:00Z)"},
			&cli.StringFlag{Name: "for", Usage: "end the pause by itself after this long (90m, 2h)"},
			consumerFlag(),
		},
		Action: runPause,
	}
}

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:   "resume",
		Usage:  "lift a pause of delivery: the waiting events are delivered in order",
		Flags:  []cli.Flag{consumerFlag()},
		Action: runResume,
	}
}

// pauseEnd reads --until or --for: zero for a pause until resumed.
func pauseEnd(cmd *cli.Command, now time.Time) (time.Time, error) {
	until, forD := cmd.String("until"), cmd.String("for")
	switch {
	case until != "" && forD != "":
		return time.Time{}, cli.Exit("--until and --for both given: use one (--until for a time, --for for a duration)", exitUsageCode)
	case until != "":
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return time.Time{}, cli.Exit(fmt.Sprintf("--until %q: not an RFC 3339 time; write it like 2026-11-29T22:00:00Z or 2026-11-30T06:00:00+08:00", until), exitUsageCode)
		}
		if !t.After(now) {
			return time.Time{}, cli.Exit(fmt.Sprintf("--until %s is in the past (now is %s): give a later time, or no --until to pause until resumed",
				until, now.UTC().Format(time.RFC3339)), exitUsageCode)
		}
		return t, nil
	case forD != "":
		d, err := time.ParseDuration(forD)
		if err != nil {
			return time.Time{}, cli.Exit(fmt.Sprintf("--for %q: not a duration; write it like 90m, 2h or 1h30m", forD), exitUsageCode)
		}
		if d <= 0 {
			return time.Time{}, cli.Exit(fmt.Sprintf("--for %s: give a positive duration, or no --for to pause until resumed", forD), exitUsageCode)
		}
		end := now.Add(d) // rounded up to the second, so it prints as kept
		if whole := end.Truncate(time.Second); whole.Before(end) {
			end = whole.Add(time.Second)
		}
		return end, nil
	}
	return time.Time{}, nil
}

// openTarget connects, as name, and reads the deployment's pause.Target;
// the session is to be closed unless err.
func openTarget(ctx context.Context, cmd *cli.Command, name string) (session, pause.Target, error) {
	s, err := openSession(ctx, cmd, name)
	if err != nil {
		return s, pause.Target{}, err
	}
	tg, err := pause.TargetOf(ctx, s.js, cmd.String("consumer"))
	if err != nil {
		s.close()
	}
	return s, tg, err
}

func runPause(ctx context.Context, cmd *cli.Command) error {
	end, err := pauseEnd(cmd, time.Now())
	if err != nil {
		return err
	}
	s, tg, err := openTarget(ctx, cmd, "pathupdate-pause")
	if err != nil {
		return err
	}
	defer s.close()
	st, err := pause.Pause(ctx, s.js, tg, end)
	if err != nil && !st.Paused {
		return err
	}
	writePauseResult(cmd.Root().Writer, "paused", tg, st)
	return err
}

func runResume(ctx context.Context, cmd *cli.Command) error {
	s, tg, err := openTarget(ctx, cmd, "pathupdate-resume")
	if err != nil {
		return err
	}
	defer s.close()
	before, err := pause.Read(ctx, s.js, tg)
	if err != nil {
		return err
	}
	st, err := pause.Resume(ctx, s.js, tg)
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	if !before.Paused && len(before.Disagreeing()) == 0 {
		_, err = fmt.Fprintln(out, "delivery was not paused: nothing to resume")
		return err
	}
	writePauseResult(out, "resumed", tg, st)
	return nil
}

// writePauseResult says what pause or resume did, as the other commands
// say what they did.
func writePauseResult(out io.Writer, did string, tg pause.Target, st pause.State) {
	what := fmt.Sprintf("%s delivery on %s and the unpartitioned consumer", did, plural(tg.Partitions, "partition", "partitions"))
	if did == "paused" {
		when := "until resumed"
		if !st.UntilResumed {
			when = "until " + st.Until.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(out, "%s %s; lift it with `pathupdate resume`\n", what, when)
		if n := st.Missing(); n > 0 {
			fmt.Fprintf(out, "%d of the consumers do not exist yet: a worker creates them paused\n", n)
		}
	} else {
		fmt.Fprintf(out, "%s: the events that waited are delivered now, in order\n", what)
	}
	for _, c := range st.Disagreeing() {
		fmt.Fprintf(out, "consumer %s is still %s: running workers put it right within seconds; `pathupdate status` shows it\n", c.Name, c)
	}
}
