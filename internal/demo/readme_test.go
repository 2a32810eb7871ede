package demo

import (
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The README's dead-letter walkthrough on the demo's leftovers names a
// seed, a waybill WeChat does not know, its token and how many events a
// replay sends: with that seed the demo must make exactly that traffic, or
// a reader following the README finds another waybill in the list.
func TestREADMEDemoExampleReproducesWithItsSeed(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	find := func(re string) []string {
		t.Helper()
		m := regexp.MustCompile(re).FindSubmatch(readme)
		if m == nil {
			t.Fatalf("README.md has no match for %s", re)
		}
		out := make([]string, len(m))
		for i, b := range m {
			out[i] = string(b)
		}
		return out
	}
	seed, err := strconv.ParseUint(find(`go run \./cmd/pathupdate demo --seed (\d+) --keep-running`)[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	order := find(`/sandbox/orders \\\s*\n\s*-d '\[\{"waybill_id":"(DEMO\d+)","token":"([^"]+)"\}\]'`)
	waybill, token := order[1], order[2]
	replayed, _ := strconv.Atoi(find(`deadletter replay --waybill ` + waybill + `\nreplayed (\d+) `)[1])
	if !regexp.MustCompile(`deadletter list --reason rejected --errcode 40199\n.*\n\d+\s+\S+\s+` + waybill + `\s+rejected\s+40199`).Match(readme) {
		t.Errorf("README.md's list does not show %s as a 40199 dead letter", waybill)
	}

	cfg := Config{Seed: seed}.withDefaults()
	traces := makeTraffic(rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		cfg.Waybills, cfg.EventsPerWaybill, cfg.UnknownShare, cfg.WrongTokenShare)
	for _, tr := range traces {
		if tr.waybill != waybill {
			continue
		}
		if tr.kind != kindUnknown {
			t.Errorf("with --seed %d, %s is not a waybill WeChat does not know (kind %d)", seed, waybill, tr.kind)
		}
		if tr.token != token {
			t.Errorf("with --seed %d, %s's token is %s; README.md registers %s", seed, waybill, tr.token, token)
		}
		if len(tr.events) != replayed {
			t.Errorf("with --seed %d, %s has %d events; README.md replays %d", seed, waybill, len(tr.events), replayed)
		}
		return
	}
	t.Errorf("with --seed %d the demo has no waybill %s", seed, waybill)
}
