// Package cdp runs the agent's side of the protocol with the central CDP:
// one MQTT link (sync/link) carrying the uplink's event batches
// (sync/uplink), the downlink's verified changes, acks and sync replies
// (sync/downlink), and the agent's presence (a retained AgentStatus, and the
// same with online false as the MQTT will).
//
// It wires; the rules live in the packages it wires. It must never make the
// agent wait for the network: everything here runs on its own goroutines,
// and the agent works the same with the link down (invariant 9).
package cdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/downlink"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/uplink"
	"github.com/storeagent/storeagent/sync/wire"
)

// Config configures the session.
type Config struct {
	Scope    wire.Scope     // tenant, store, agent
	Verifier *wire.Verifier // the central's public keys
	Version  string         // the agent's version, for presence
	Link     link.Config    // ClientID defaults to tenant-store-agent
	Uplink   uplink.Config  // Scope is filled in
	Downlink downlink.Config
	// StatusEvery is how often presence is refreshed while connected.
	// Default 60s.
	StatusEvery time.Duration
}

// Sync is a session with the central.
type Sync struct {
	cfg  Config
	db   *store.DB
	ag   *agent.Agent
	log  *slog.Logger
	link *link.Link
	up   *uplink.Uplink
	down *downlink.Downlink
	in   chan link.Message
}

// Status is the session's state for status pages and metrics.
type Status struct {
	Link     link.State     `json:"link"`
	Uplink   uplink.Stats   `json:"uplink"`
	Downlink downlink.Stats `json:"downlink"`
}

// New wires a session over the agent and its store. Nothing connects until
// Run.
func New(cfg Config, db *store.DB, ag *agent.Agent, log *slog.Logger) (*Sync, error) {
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Minute
	}
	if cfg.Link.ClientID == "" {
		cfg.Link.ClientID = cfg.Scope.Tenant + "-" + cfg.Scope.Store + "-" + cfg.Scope.Agent
	}
	// The broker's in-flight limit bounds what waits here (see link.Message.Ack);
	// the room above it is for the small messages of the other topics.
	s := &Sync{cfg: cfg, db: db, ag: ag, log: log, in: make(chan link.Message, 256)}
	statusTopic, err := cfg.Scope.Topic(wire.TopicStatus)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	cfg.Link.Will = func() link.Message {
		return link.Message{Topic: statusTopic, Payload: s.presence(false), Retained: true}
	}
	cfg.Link.Goodbye = cfg.Link.Will
	if s.link, err = link.New(cfg.Link, log); err != nil {
		return nil, err
	}
	cfg.Uplink.Scope = cfg.Scope
	if s.up, err = uplink.New(cfg.Uplink, db, ag, s.link, log); err != nil {
		return nil, err
	}
	cfg.Downlink.Scope, cfg.Downlink.Verifier = cfg.Scope, cfg.Verifier
	if s.down, err = downlink.New(cfg.Downlink, ag, s.link, s.up.HandleAck, log); err != nil {
		return nil, err
	}
	changes, acks, syncReply, err := s.down.Topics()
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	for _, t := range []string{changes, acks, syncReply} {
		s.link.Subscribe(t, s.in)
	}
	s.link.OnConnect(func() {
		// The drain first: it only takes a signal, and starts on its own
		// goroutine while the presence waits for its PUBACK.
		s.up.Reconnected()
		s.announce(statusTopic)
		s.down.Resync()
	})
	return s, nil
}

// Run runs the link, the uplink and the downlink until ctx ends; it returns
// nil then, after every goroutine has stopped.
func (s *Sync) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		})
	}
	run(s.up.Run)
	run(func(ctx context.Context) error { return s.down.Run(ctx, s.in) })
	run(s.refreshPresence)
	run(s.link.Run) // last: the others are ready for what it delivers
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// Resync asks the central for every change after the cursor.
func (s *Sync) Resync() { s.down.Resync() }

// Status returns the session's state.
func (s *Sync) Status() Status {
	return Status{Link: s.link.State(), Uplink: s.up.Stats(), Downlink: s.down.Stats()}
}

func (s *Sync) presence(online bool) []byte {
	cur, _ := s.ag.Cursor()
	b, err := wire.EncodeAgentStatus(wire.AgentStatus{
		Agent: s.cfg.Scope.Agent, Store: s.cfg.Scope.Store, Online: online,
		At: time.Now().UnixMilli(), Version: s.cfg.Version, Outbox: s.db.QueuedRecords(), Cursor: cur,
	})
	if err != nil {
		s.log.Error("encode presence", "err", err)
	}
	return b
}

func (s *Sync) announce(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.link.Publish(ctx, topic, s.presence(true), true); err != nil {
		s.log.Debug("presence not published", "err", err)
	}
}

func (s *Sync) refreshPresence(ctx context.Context) error {
	topic, _ := s.cfg.Scope.Topic(wire.TopicStatus)
	t := time.NewTicker(s.cfg.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if s.link.Connected() {
				s.announce(topic)
			}
		}
	}
}
