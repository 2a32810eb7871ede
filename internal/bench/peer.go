package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
)

// PeerRun is what the peer program (bench/peer) prints as JSON: the
// latency-bound job done with watermill.
type PeerRun struct {
	Events      int           `json:"events"`
	Seconds     float64       `json:"seconds"`
	Rate        float64       `json:"events_per_s"`
	Order       traffic.Order `json:"order"`
	Subscribers int           `json:"subscribers"`
	APICalls    int64         `json:"api_calls"`
	Config      string        `json:"config"`
}

// runPeer is scenario 7: the peer on the same job as scenario 3 (same
// plan spec and seed, same sandbox latency, same client, as many
// subscribers as the worker's concurrency), against scenario 3's result.
func (r *runner) runPeer(ctx context.Context, ours jobRun) (Result, error) {
	bin, err := r.peerBin(ctx)
	if err != nil {
		return Result{}, err
	}
	o := r.opts
	cmd := exec.CommandContext(ctx, bin,
		"-waybills", strconv.Itoa(o.Waybills), "-events", strconv.Itoa(o.LatencyEvents),
		"-seed", strconv.FormatUint(o.Seed, 10), "-latency", o.Latency.String(),
		"-subscribers", strconv.Itoa(o.Concurrency))
	cmd.Dir = r.buildDir
	var stdout bytes.Buffer
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("peer: %w: %s", err, stderr.String())
	}
	var peer PeerRun
	if err := json.Unmarshal(stdout.Bytes(), &peer); err != nil {
		return Result{}, fmt.Errorf("peer output %q: %w", stdout.String(), err)
	}
	r.progress("7 peer: %.0f events/s, order %+v", peer.Rate, peer.Order)
	ok := ours.Rate >= peer.Rate && ours.Order.Violations == 0 && ours.Order.Missing == 0
	return Result{
		ID: 7, Name: "peer: watermill + NATS JetStream + Retry", Unit: "ev/s",
		Ours: ours.Rate, Reference: peer.Rate, RefName: "watermill",
		Ratio: ratio(ours.Rate, peer.Rate), Target: ">= 1.00, ours 0 violations", Met: met(ok),
		Details: map[string]any{"ours": ours, "peer": peer},
		Notes: []string{
			fmt.Sprintf("peer: %s", peer.Config),
			fmt.Sprintf("peer order: %d missing, %d duplicates, %d order violations in %d waybills; ours (scenario 3): %d missing, %d duplicates, %d violations",
				peer.Order.Missing, peer.Order.Duplicates, peer.Order.Violations, peer.Order.WaybillsViolated,
				ours.Order.Missing, ours.Order.Duplicates, ours.Order.Violations),
		},
	}, nil
}

// peerBin returns Options.PeerBin, or builds bench/peer (its own module).
func (r *runner) peerBin(ctx context.Context) (string, error) {
	if r.opts.PeerBin != "" {
		return r.opts.PeerBin, nil
	}
	out := filepath.Join(r.buildDir, "pathupdate-peer-bench")
	if err := goBuild(ctx, filepath.Join(r.opts.ModuleDir, "bench", "peer"), out, "."); err != nil {
		return "", err
	}
	r.opts.PeerBin = out
	return out, nil
}
