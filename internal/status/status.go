// Package status reports what a pathupdate deployment is doing now: its
// streams, the live workers and the partitions each holds, the backlog and
// unacked messages per partition, the dead letters by reason and
// errcode, and whether an operator paused delivery. It is what `pathupdate status` prints.
//
// It only reads: it must never create, change or delete anything in
// JetStream.
package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/worker"
)

// Report is one look at a deployment.
type Report struct {
	At          time.Time         `json:"at"`
	Trace       StreamReport      `json:"trace_stream"`
	DeadLetter  StreamReport      `json:"deadletter_stream"`
	Workers     []worker.Member   `json:"workers"`
	Partitions  []PartitionReport `json:"partitions"`
	DeadLetters DeadLetterCounts  `json:"dead_letters"`
	// Unpartitioned counts trace-stream messages stored without a
	// partition (published to a literal wildcard subject): no partition
	// consumer sees them; running workers dead-letter them as invalid
	// events, so a count that stays above 0 means no worker runs.
	Unpartitioned uint64 `json:"unpartitioned"`
	// History is the delivery history stream; nil when it does not exist
	// (history off, or no worker of this version has started).
	History *HistoryReport `json:"history_stream,omitempty"`
	// Quota is WeChat's quota of logistics.updatePath as last read (nil
	// before any worker read it).
	Quota *QuotaReport `json:"wechat_quota,omitempty"`
	// Pause is an operator's pause of delivery (`pathupdate pause`), with
	// what each consumer says of it.
	Pause pause.State `json:"pause"`
}

// HistoryReport is the history stream's size and reach.
type HistoryReport struct {
	StreamReport
	MaxAge time.Duration `json:"max_age"`
	// Oldest is when its oldest record was written (zero when empty).
	Oldest time.Time `json:"oldest,omitzero"`
}

// StreamReport is a stream's shape and size.
type StreamReport struct {
	Name     string `json:"name"`
	Replicas int    `json:"replicas"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	Leader   string `json:"leader,omitempty"`
}

// PartitionReport is one partition's consumer: what waits and who has it.
type PartitionReport struct {
	Partition  int    `json:"partition"`
	Consumer   string `json:"consumer"`
	Pending    uint64 `json:"pending"`     // not yet delivered to any worker
	AckPending int    `json:"ack_pending"` // delivered, not yet acked
	Holder     string `json:"holder,omitempty"`
	Pinned     bool   `json:"pinned"`
}

// DeadLetterCounts split the dead-letter stream by reason and errcode.
type DeadLetterCounts struct {
	Total     int            `json:"total"`
	ByReason  map[string]int `json:"by_reason"`
	ByErrCode map[int]int    `json:"by_errcode"`
}

// Gather reads the report. consumerPrefix is the workers' Config.Consumer
// (worker.ConsumerDefault unless changed).
func Gather(ctx context.Context, js jetstream.JetStream, consumerPrefix string) (Report, error) {
	return GatherWith(ctx, js, consumerPrefix, Options{})
}

// Options change where Gather takes parts of the report from.
type Options struct {
	// DeadLetters, when set, gives the dead-letter counts instead of a
	// read of the whole dead-letter stream's headers (the console answers
	// them from its deadletter.Index, which it keeps up to date anyway).
	DeadLetters func(context.Context) (deadletter.Stats, error)
}

// GatherWith is Gather with opts.
func GatherWith(ctx context.Context, js jetstream.JetStream, consumerPrefix string, opts Options) (Report, error) {
	r := Report{At: time.Now().UTC()}
	var err error
	if r.Trace, err = streamReport(ctx, js, pathupdate.TraceStream); err != nil {
		return r, err
	}
	if r.DeadLetter, err = streamReport(ctx, js, pathupdate.DeadLetterStream); err != nil {
		return r, err
	}
	r.Workers, err = worker.Members(ctx, js)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return r, fmt.Errorf("status: workers: %w", err)
	}
	holder := map[int]string{}
	for _, m := range r.Workers {
		for _, p := range m.Partitions {
			holder[p] = m.ID
		}
	}
	n, err := pathupdate.TracePartitions(ctx, js)
	if err != nil {
		return r, fmt.Errorf("status: %w", err)
	}
	for p := range n {
		pr := PartitionReport{Partition: p, Consumer: worker.ConsumerName(consumerPrefix, p), Holder: holder[p]}
		c, err := js.Consumer(ctx, pathupdate.TraceStream, pr.Consumer)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			// No worker has started yet: everything is pending.
		case err != nil:
			return r, fmt.Errorf("status: consumer %s: %w", pr.Consumer, err)
		default:
			info, err := c.Info(ctx)
			if err != nil {
				return r, fmt.Errorf("status: consumer %s: %w", pr.Consumer, err)
			}
			pr.Pending, pr.AckPending = info.NumPending, info.NumAckPending
			for _, g := range info.PriorityGroups {
				pr.Pinned = pr.Pinned || g.PinnedClientID != ""
			}
		}
		r.Partitions = append(r.Partitions, pr)
	}
	if r.Pause, err = pause.Read(ctx, js, pause.Target{Consumer: consumerPrefix, Partitions: n}); err != nil {
		return r, fmt.Errorf("status: %w", err)
	}
	if r.Unpartitioned, err = unpartitioned(ctx, js); err != nil {
		return r, err
	}
	if r.History, err = historyReport(ctx, js); err != nil {
		return r, err
	}
	if r.Quota, err = quotaReport(ctx, js); err != nil {
		return r, err
	}
	if opts.DeadLetters == nil {
		store, err := deadletter.NewStore(js, deadletter.StoreConfig{})
		if err != nil {
			return r, err
		}
		opts.DeadLetters = func(ctx context.Context) (deadletter.Stats, error) { return store.Stats(ctx, deadletter.Filter{}) }
	}
	st, err := opts.DeadLetters(ctx)
	if err != nil {
		return r, fmt.Errorf("status: dead letters: %w", err)
	}
	r.DeadLetters = DeadLetterCounts{Total: st.Total, ByReason: st.ByReason, ByErrCode: st.ByErrCode}
	return r, nil
}

func streamReport(ctx context.Context, js jetstream.JetStream, name string) (StreamReport, error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return StreamReport{}, fmt.Errorf("status: stream %s does not exist: start a worker first (it creates the streams)", name)
	}
	if err != nil {
		return StreamReport{}, fmt.Errorf("status: stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return StreamReport{}, fmt.Errorf("status: stream %s: %w", name, err)
	}
	sr := StreamReport{Name: name, Replicas: info.Config.Replicas, Messages: info.State.Msgs, Bytes: info.State.Bytes}
	if info.Cluster != nil {
		sr.Leader = info.Cluster.Leader
	}
	return sr, nil
}

func historyReport(ctx context.Context, js jetstream.JetStream) (*HistoryReport, error) {
	st, err := js.Stream(ctx, history.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("status: stream %s: %w", history.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: stream %s: %w", history.Stream, err)
	}
	h := &HistoryReport{StreamReport: StreamReport{Name: history.Stream, Replicas: info.Config.Replicas, Messages: info.State.Msgs, Bytes: info.State.Bytes},
		MaxAge: info.Config.MaxAge, Oldest: info.State.FirstTime}
	if info.Cluster != nil {
		h.Leader = info.Cluster.Leader
	}
	if info.State.Msgs == 0 {
		h.Oldest = time.Time{}
	}
	return h, nil
}

// unpartitioned counts the trace stream's messages on
// pathupdate.UnpartitionedFilter.
func unpartitioned(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return 0, fmt.Errorf("status: stream %s: %w", pathupdate.TraceStream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(pathupdate.UnpartitionedFilter))
	if err != nil {
		return 0, fmt.Errorf("status: stream %s: %w", pathupdate.TraceStream, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
