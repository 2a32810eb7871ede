package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// MembersBucket is the JetStream key-value bucket where live workers
// announce themselves. An entry lives MemberTTL after its last heartbeat,
// so a worker killed with -9 drops out by itself.
const MembersBucket = "pathupdate_workers"

// Member is one live worker as it announces itself.
type Member struct {
	ID         string    `json:"id"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Beat       time.Time `json:"beat"`
	Partitions []int     `json:"partitions"` // partitions it holds now
	Held       int       `json:"held"`       // messages it holds now
	// Breaker is its circuit breaker's state ("closed", "open",
	// "half_open"); Paused says why its delivery is paused, "" when it
	// is not (refused credentials, or the outcome that opened the breaker).
	Breaker string `json:"breaker,omitempty"`
	Paused  string `json:"paused,omitempty"`
	// Delivered and DeadLettered are its running totals since it started
	// (Stats): a reader that samples them works out rates per minute
	// for the whole deployment without scraping each worker.
	Delivered    uint64 `json:"delivered"`
	DeadLettered uint64 `json:"dead_lettered"`
}

// membership is this worker's entry in MembersBucket.
type membership struct {
	kv     jetstream.KeyValue
	me     Member
	health func() Health // what the worker says of its delivery; nil: nothing
	totals func() (delivered, deadLettered uint64)
}

// NewMemberID makes a member id: host name, process id and a random
// suffix, in the characters a key of MembersBucket allows.
func NewMemberID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), strings.ToLower(nuid.Next()[16:]))
}

func openMembership(ctx context.Context, js jetstream.JetStream, id string, ttl time.Duration, replicas int, now time.Time) (*membership, error) {
	want := jetstream.KeyValueConfig{
		Bucket:      MembersBucket,
		Description: "pathupdate: live workers and the partitions they hold",
		TTL:         ttl,
		History:     1,
		Replicas:    replicas,
	}
	// Look first and update only what differs: an update of an unchanged
	// bucket still rewrites its stream's config, which races (in
	// nats-server 2.15.2) with the consumers other workers create on it.
	kv, err := js.KeyValue(ctx, MembersBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		kv, err = js.CreateKeyValue(ctx, want)
		if errors.Is(err, jetstream.ErrBucketExists) { // another worker was quicker
			kv, err = js.KeyValue(ctx, MembersBucket)
		}
	case err == nil:
		var st jetstream.KeyValueStatus
		if st, err = kv.Status(ctx); err == nil && (st.TTL() != ttl || st.History() != 1) {
			kv, err = js.UpdateKeyValue(ctx, want)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("worker: members bucket %s: %w", MembersBucket, err)
	}
	host, _ := os.Hostname()
	return &membership{kv: kv, me: Member{ID: id, Host: host, PID: os.Getpid(), Started: now}}, nil
}

// beat renews this worker's entry with what it holds now.
func (m *membership) beat(ctx context.Context, partitions []int, heldN int, now time.Time) error {
	m.me.Partitions, m.me.Held, m.me.Beat = partitions, heldN, now
	if m.health != nil {
		h := m.health()
		m.me.Breaker, m.me.Paused = h.Breaker.String(), h.Why
	}
	if m.totals != nil {
		m.me.Delivered, m.me.DeadLettered = m.totals()
	}
	b, err := json.Marshal(m.me)
	if err != nil {
		return err
	}
	_, err = m.kv.Put(ctx, m.me.ID, b)
	return err
}

// leave removes this worker's entry so the others take over at once
// instead of after MemberTTL.
func (m *membership) leave(ctx context.Context) error {
	return m.kv.Delete(ctx, m.me.ID)
}

// Members lists the live workers, sorted by ID.
func Members(ctx context.Context, js jetstream.JetStream) ([]Member, error) {
	kv, err := js.KeyValue(ctx, MembersBucket)
	if err != nil {
		return nil, err
	}
	return listMembers(ctx, kv)
}

func listMembers(ctx context.Context, kv jetstream.KeyValue) ([]Member, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Member
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or left since the listing
		}
		if err != nil {
			return nil, err
		}
		var m Member
		if err := json.Unmarshal(e.Value(), &m); err != nil || m.ID == "" {
			m = Member{ID: k}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// assignment is which of n partitions the member id holds when the live
// members are ids (sorted): partition p goes to ids[p mod len(ids)]. Every
// worker computes the same answer from the same list, and the shares
// differ by at most one partition.
func assignment(ids []string, n int, id string) []int {
	i := slices.Index(ids, id)
	if i < 0 {
		return nil
	}
	var mine []int
	for p := i; p < n; p += len(ids) {
		mine = append(mine, p)
	}
	return mine
}
