// Package downlink receives what the central CDP sends a store: the change
// stream, acks of this agent's batches, and replies to its sync requests.
// It verifies every message's signature before it reads it, applies changes
// through the agent only at cursor + 1 (the agent moves the cursor in the
// same transaction; changes that arrive together, a sync reply's run or a
// burst of the stream, share one transaction), holds back changes after a
// gap and asks for what is missing, and applies a chunked snapshot
// atomically.
//
// It must never apply an unsigned, wrongly signed or replayed message, nor
// skip a gap, nor roll the cache back to an older snapshot. Everything it
// drops it counts, by reason, and logs without personal data.
//
// The invariant its tests protect: 7, authentic downlink (a valid signature
// of the central's key and a sequence number that moves the cursor forward,
// or nothing happens).
package downlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/sync/wire"
)

// Applier is the subset of *agent.Agent the downlink needs.
type Applier interface {
	Apply(ctx context.Context, ch agent.Change) (agent.ApplyResult, error)
	ApplyRun(ctx context.Context, chs []agent.Change) ([]agent.ApplyResult, error)
	Cursor() (uint64, error)
	BeginSnapshot(ctx context.Context, to uint64) (*agent.Snapshot, error)
	Policy() *consent.Policy
}

// Publisher publishes at QoS 1 (the link).
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
}

// Config configures the downlink.
type Config struct {
	Scope    wire.Scope // tenant, store and this agent
	Verifier *wire.Verifier
	// MaxHeld bounds the changes held back after a gap. Default 10,000.
	MaxHeld int
	// ResyncEvery is the least time between two sync requests for the same
	// gap. Default 5s.
	ResyncEvery time.Duration
}

// Stats are the downlink's counters, by outcome.
type Stats struct {
	Applied      uint64            `json:"applied"`
	Duplicates   uint64            `json:"duplicates"`
	Gaps         uint64            `json:"gaps"`
	Held         int               `json:"held"`
	SyncRequests uint64            `json:"syncRequests"`
	Snapshots    uint64            `json:"snapshots"`
	Acks         uint64            `json:"acks"`
	Rejected     map[string]uint64 `json:"rejected"` // by reason
	Cursor       uint64            `json:"cursor"`
	Head         uint64            `json:"head"` // highest seq seen from the central
	LastChangeAt int64             `json:"lastChangeAt,omitempty"`
}

// Downlink is the receiving side. Run owns its state.
type Downlink struct {
	cfg   Config
	ap    Applier
	pub   Publisher
	onAck func(wire.Ack)
	log   *slog.Logger

	changeScope  wire.Scope // the store's stream has no agent segment
	syncTopic    string
	resyncSignal chan struct{}

	mu    sync.Mutex // guards stats
	stats Stats
}

// New makes a downlink. onAck receives every verified Ack (the uplink).
func New(cfg Config, ap Applier, pub Publisher, onAck func(wire.Ack), log *slog.Logger) (*Downlink, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("downlink: no central key to verify with")
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = 10_000
	}
	if cfg.ResyncEvery <= 0 {
		cfg.ResyncEvery = 5 * time.Second
	}
	topic, err := cfg.Scope.Topic(wire.TopicSyncRequest)
	if err != nil {
		return nil, fmt.Errorf("downlink: %w", err)
	}
	return &Downlink{
		cfg: cfg, ap: ap, pub: pub, onAck: onAck, log: log.With("component", "downlink"),
		changeScope: wire.Scope{Tenant: cfg.Scope.Tenant, Store: cfg.Scope.Store},
		syncTopic:   topic, resyncSignal: make(chan struct{}, 1),
		stats: Stats{Rejected: map[string]uint64{}},
	}, nil
}

// Topics returns the filters to subscribe to and their kinds.
func (d *Downlink) Topics() (changes, acks, sync string, err error) {
	if changes, err = d.changeScope.Topic(wire.TopicChanges); err != nil {
		return
	}
	if acks, err = d.cfg.Scope.Topic(wire.TopicAcks); err != nil {
		return
	}
	sync, err = d.cfg.Scope.Topic(wire.TopicSyncReply)
	return
}

// Resync asks for everything after the cursor: on start, after a
// reconnect, from `storectl sync resync`. It never blocks.
func (d *Downlink) Resync() {
	select {
	case d.resyncSignal <- struct{}{}:
	default:
	}
}

// Stats returns a copy of the counters.
func (d *Downlink) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Rejected = make(map[string]uint64, len(d.stats.Rejected))
	for k, v := range d.stats.Rejected {
		s.Rejected[k] = v
	}
	s.Cursor, _ = d.ap.Cursor()
	return s
}

func (d *Downlink) count(f func(s *Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

func (d *Downlink) reject(reason string, err error) {
	d.count(func(s *Stats) { s.Rejected[reason]++ })
	d.log.Warn("downlink message dropped", "reason", reason, "err", err)
}

// reasonOf names why a message failed to verify or decode.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, wire.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, wire.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, wire.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, wire.ErrTooLarge):
		return "too_large"
	case errors.Is(err, wire.ErrBadVersion):
		return "bad_version"
	case errors.Is(err, agent.ErrBadChange):
		return "bad_change"
	}
	return "malformed"
}
