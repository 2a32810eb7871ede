package metrics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// ConsumerLag is what one partition's consumer has yet to do.
type ConsumerLag struct {
	// Pending: messages in the stream the consumer has not delivered yet
	// (JetStream's num_pending).
	Pending uint64
	// AckPending: messages delivered to a worker and not acked yet
	// (num_ack_pending): held in lanes, retrying or being delivered.
	AckPending int
}

// LagFunc reads consumer lag, keyed by the partition label value: the
// partition number ("0", "1", ...), "all" for a consumer over the whole
// stream, or the consumer's name for a filter that is neither. It must
// honour ctx. On an error it may still return what it could read; those
// series are exported and pathupdate_consumer_lag_read_ok is 0.
type LagFunc func(ctx context.Context) (map[string]ConsumerLag, error)

// lagReadConcurrency bounds the consumer info requests in flight at once.
const lagReadConcurrency = 8

// JetStreamLag returns a LagFunc that reads the consumer info of each
// consumer consumers() names on stream, several at a time. A consumer that
// does not exist (not created yet, or deleted) is left out without error;
// any other failure is returned, joined, with the rest still read.
// Consumers that map to the same partition label are added together.
func JetStreamLag(js jetstream.JetStream, stream string, consumers func() []string) LagFunc {
	return func(ctx context.Context) (map[string]ConsumerLag, error) {
		names := consumers()
		type read struct {
			label string
			lag   ConsumerLag
			err   error
		}
		reads := make([]read, len(names))
		sem := make(chan struct{}, lagReadConcurrency)
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c, err := js.Consumer(ctx, stream, name)
				if err != nil {
					if !errors.Is(err, jetstream.ErrConsumerNotFound) {
						reads[i].err = fmt.Errorf("consumer %s on %s: %w", name, stream, err)
					}
					return
				}
				info := c.CachedInfo()
				reads[i] = read{label: PartitionLabel(name, info.Config), lag: ConsumerLag{Pending: info.NumPending, AckPending: info.NumAckPending}}
			}()
		}
		wg.Wait()
		out := make(map[string]ConsumerLag, len(names))
		var errs []error
		for _, r := range reads {
			switch {
			case r.err != nil:
				errs = append(errs, r.err)
			case r.label != "":
				l := out[r.label]
				l.Pending += r.lag.Pending
				l.AckPending += r.lag.AckPending
				out[r.label] = l
			}
		}
		return out, errors.Join(errs...)
	}
}

// PartitionConsumers returns the names of the durable partition consumers
// of a deployment (worker.ConsumerName(prefix, p) for p < partitions) and
// of its consumer of unpartitioned messages, for JetStreamLag.
func PartitionConsumers(prefix string, partitions int) func() []string {
	return func() []string {
		out := make([]string, partitions, partitions+1)
		for p := range out {
			out[p] = worker.ConsumerName(prefix, p)
		}
		return append(out, worker.UnpartitionedConsumerName(prefix))
	}
}

// UnpartitionedLabel is the partition label of the consumer of messages
// stored without a partition (published to a wildcard subject).
const UnpartitionedLabel = "unpartitioned"

// PartitionLabel is the partition label value of a consumer: p when its
// only filter is pathupdate.PartitionFilter(p), "all" when it has no
// filter, its name otherwise (names are set by configuration, so they stay
// bounded).
func PartitionLabel(name string, cfg jetstream.ConsumerConfig) string {
	filter := cfg.FilterSubject
	if filter == "" && len(cfg.FilterSubjects) == 1 {
		filter = cfg.FilterSubjects[0]
	}
	if filter == "" && len(cfg.FilterSubjects) == 0 {
		return "all"
	}
	if filter == pathupdate.UnpartitionedFilter {
		return UnpartitionedLabel
	}
	if p, ok := strings.CutSuffix(filter, "."+pathupdate.TraceSubjectPrefix+"*"); ok {
		if n, err := strconv.Atoi(p); err == nil && n >= 0 && strconv.Itoa(n) == p {
			return p
		}
	}
	return name
}

// lagCollector calls a LagFunc at scrape time.
type lagCollector struct {
	read    LagFunc
	timeout time.Duration
	log     zerolog.Logger

	pending, ackPending, ok *prometheus.Desc
}

func newLagCollector(read LagFunc, timeout time.Duration, log zerolog.Logger) *lagCollector {
	return &lagCollector{
		read:    read,
		timeout: timeout,
		log:     log,
		pending: prometheus.NewDesc(Namespace+"_consumer_pending",
			"Messages of the partition not yet delivered to any worker (JetStream num_pending).", []string{"partition"}, nil),
		ackPending: prometheus.NewDesc(Namespace+"_consumer_ack_pending",
			"Messages of the partition delivered to a worker and not yet acked (num_ack_pending).", []string{"partition"}, nil),
		ok: prometheus.NewDesc(Namespace+"_consumer_lag_read_ok",
			"1 when the last read of consumer lag succeeded, 0 when it failed or timed out (the lag series may then be partial or absent).", nil, nil),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.ok
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	lags, err := c.read(ctx)
	ok := 1.0
	if err != nil {
		ok = 0
		c.log.Warn().Err(err).Msg("metrics: reading consumer lag")
	}
	ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, ok)
	for p, l := range lags {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(l.Pending), p)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(l.AckPending), p)
	}
}
