package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Defaults of StreamConfig.
const (
	MaxAgeDefault     = 7 * 24 * time.Hour
	PerWaybillDefault = 1000
)

// StreamConfig sets how EnsureStream creates or updates LOGISTICS_HISTORY.
// The zero value is usable after WithDefaults.
type StreamConfig struct {
	// MaxAge of a record; default MaxAgeDefault (7 days). Older records
	// are removed by the server.
	MaxAge time.Duration
	// PerWaybill caps the records kept per waybill, the oldest going
	// first; default PerWaybillDefault.
	PerWaybill int64
	// Replicas, as the other streams'; default 1.
	Replicas int
	// Storage; default jetstream.FileStorage.
	Storage jetstream.StorageType
}

// WithDefaults returns a copy of c with every zero field at its default.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.MaxAge == 0 {
		c.MaxAge = MaxAgeDefault
	}
	if c.PerWaybill == 0 {
		c.PerWaybill = PerWaybillDefault
	}
	if c.Replicas == 0 {
		c.Replicas = pathupdate.DefaultReplicas
	}
	return c
}

// Validate checks c after WithDefaults.
func (c StreamConfig) Validate() error {
	var errs []error
	if c.MaxAge < time.Second {
		errs = append(errs, fmt.Errorf("StreamConfig.MaxAge: %s is too short: use at least 1s (default %s)", c.MaxAge, MaxAgeDefault))
	}
	if c.PerWaybill < 1 {
		errs = append(errs, fmt.Errorf("StreamConfig.PerWaybill: %d: use 1 or more (default %d)", c.PerWaybill, PerWaybillDefault))
	}
	if c.Replicas < 1 || c.Replicas > pathupdate.MaxReplicas {
		errs = append(errs, fmt.Errorf("StreamConfig.Replicas: %d: use 1 to %d", c.Replicas, pathupdate.MaxReplicas))
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		errs = append(errs, fmt.Errorf("StreamConfig.Storage: %d: use jetstream.FileStorage or jetstream.MemoryStorage", c.Storage))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

func (c StreamConfig) stream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              Stream,
		Description:       "pathupdate: delivery history of every waybill (settlements, retries, replays, purges)",
		Subjects:          []string{SubjectPrefix + "*"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxMsgsPerSubject: c.PerWaybill,
		Storage:           c.Storage,
		Replicas:          c.Replicas,
		AllowDirect:       true,
	}
}

// EnsureStream creates LOGISTICS_HISTORY, or updates its limits to c.
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, c.stream()); err != nil {
		return fmt.Errorf("history: stream %s: %w", Stream, err)
	}
	return nil
}
