package central

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/sync/wire"
)

// The uplink path: paho's handler puts each message in the inbox; the
// sequencer hands it to a pool of decode workers and, in arrival order, to
// the recorder. The recorder is the one goroutine that owns the journal,
// the seen-id set and every agent's lastAccepted while Run runs. It takes
// messages in arrival order, each once decoded, and commits them in
// groups: it handles every message already waiting (up to a bound), fsyncs
// the journal once, and only then publishes the group's Acks and sends the
// broker its PUBACKs. So an Ack never names a batch the journal could lose,
// and under load one fsync and one signature per agent serve many batches.

const (
	// maxGroupMsgs and maxGroupBytes bound a commit group.
	maxGroupMsgs  = 256
	maxGroupBytes = 16 << 20
	// maxAckRanges bounds the ranges of one Ack, well under wire.MaxAckSize.
	maxAckRanges = 1024
	// inboxSize is the depth of the inbox. With PUBACKs sent only after a
	// commit, the broker keeps at most its max_inflight_messages (20 by
	// default in mosquitto) unacknowledged with us, so the inbox rarely
	// holds more than that.
	inboxSize = 4096
	// orderedSize bounds the messages decoded ahead of the recorder.
	orderedSize = 512
)

// Reasons an uplink message is counted invalid. Decode errors map to the
// sentinels of sync/wire.
const (
	reasonBadTopic      = "bad_topic"
	reasonTooLarge      = "too_large"
	reasonMalformed     = "malformed"
	reasonBadVersion    = "bad_version"
	reasonInvalid       = "invalid"
	reasonScopeMismatch = "scope_mismatch"
)

func reasonOf(err error) string {
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		return reasonTooLarge
	case errors.Is(err, wire.ErrBadVersion):
		return reasonBadVersion
	case errors.Is(err, wire.ErrMalformed):
		return reasonMalformed
	default:
		return reasonInvalid
	}
}

// agentKey names an agent: agent ids are unique within a store.
type agentKey struct{ store, agent string }

// group is what one commit covers.
type group struct {
	msgs   []mqtt.Message            // PUBACKed after the commit
	acks   map[agentKey][]wire.Range // ranges to acknowledge, per agent
	order  []agentKey                // agents in the order they got a range
	syncs  []syncJob                 // SyncRequests to hand to the sync workers
	bytes  int
	writes bool // the journal has unsynced records
}

func newGroup() *group { return &group{acks: map[agentKey][]wire.Range{}} }

func (g *group) reset() {
	clear(g.msgs)
	g.msgs = g.msgs[:0]
	clear(g.acks)
	g.order = g.order[:0]
	g.syncs = g.syncs[:0]
	g.bytes, g.writes = 0, false
}

// inbound is one uplink message on its way from paho to the recorder. A
// decode worker fills the decoded fields and closes done; the recorder
// takes inbounds in arrival order and waits for each to be decoded.
type inbound struct {
	m  mqtt.Message
	at int64 // when it arrived, ms since the epoch

	done   chan struct{}
	kind   wire.TopicKind
	scope  wire.Scope
	reason string          // why the message is invalid, "" when it is not
	batch  wire.EventBatch // the header: its events are in ids
	ids    [][idSize]byte  // the batch's messageIds, in batch order
	req    wire.SyncRequest
	status wire.AgentStatus
	// clear marks an empty retained status: an agent deleting its
	// retained presence, which is MQTT's way and not an error.
	clear bool
}

// onMessage is paho's message handler. It never blocks: paho calls it in
// its router goroutine, in arrival order (order matters is on), and a
// blocked handler would stall every delivery. A full inbox drops the
// message and PUBACKs it, so the broker's in-flight window is not held:
// the agent re-sends the batch after its ack timeout.
func (c *Central) onMessage(_ mqtt.Client, m mqtt.Message) {
	in := &inbound{m: m, at: c.nowMs(), done: make(chan struct{})}
	select {
	case c.inbox <- in:
	default:
		c.live.inboxOverflow.Add(1)
		m.Ack()
	}
}

// sequence hands each inbound both to the decode workers and, in arrival
// order, to the recorder: decoding (most of the CPU an uplink costs) runs
// on every core while the recorder still sees messages in order.
func (c *Central) sequence(ctx context.Context, work, ordered chan<- *inbound) error {
	for {
		var in *inbound
		select {
		case <-ctx.Done():
			return nil
		case in = <-c.inbox:
		}
		for _, ch := range []chan<- *inbound{ordered, work} {
			select {
			case ch <- in:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// decodeLoop is one decode worker.
func (c *Central) decodeLoop(ctx context.Context, work <-chan *inbound) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-work:
			c.decode(in)
			close(in.done)
		}
	}
}

// decode parses the topic and the payload of in, and checks that the
// message speaks for the agent of its topic.
func (c *Central) decode(in *inbound) {
	kind, scope, err := wire.ParseTopic(in.m.Topic())
	if err != nil || scope.Tenant != c.cfg.Tenant || kind.Down() {
		in.reason = reasonBadTopic
		return
	}
	in.kind, in.scope = kind, scope
	payload := in.m.Payload()
	switch kind {
	case wire.TopicEvents:
		// Every event is validated; only the ids are kept: the
		// journal keeps the payload as received.
		in.batch, in.ids, err = wire.DecodeEventBatchIDs(payload)
		if err == nil && (in.batch.Agent != scope.Agent || in.batch.Store != scope.Store) {
			in.reason = reasonScopeMismatch
		}
	case wire.TopicSyncRequest:
		in.req, err = wire.DecodeSyncRequest(payload)
		if err == nil && in.req.Agent != scope.Agent {
			in.reason = reasonScopeMismatch
		}
	case wire.TopicStatus:
		if len(payload) == 0 {
			in.clear = true
			return
		}
		in.status, err = wire.DecodeAgentStatus(payload)
		if err == nil && (in.status.Agent != scope.Agent || in.status.Store != scope.Store) {
			in.reason = reasonScopeMismatch
		}
	}
	if err != nil {
		in.reason = reasonOf(err)
	}
}

// recordLoop is the recorder goroutine. It returns nil when ctx ends, or
// the error of a journal write: without a durable journal nothing may be
// acknowledged.
func (c *Central) recordLoop(ctx context.Context, ordered <-chan *inbound) error {
	g := newGroup()
	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-ordered:
			if !c.handle(ctx, g, in) {
				return c.commit(g)
			}
		}
	drain:
		for len(g.msgs) < maxGroupMsgs && g.bytes < maxGroupBytes {
			select {
			case in := <-ordered:
				if !c.handle(ctx, g, in) {
					return c.commit(g) // what is recorded is acknowledged, even at shutdown
				}
			default:
				break drain
			}
		}
		if err := c.commit(g); err != nil {
			return err
		}
		g.reset()
	}
}

// handle waits for in to be decoded and processes it into g. It returns
// false when ctx ended first.
func (c *Central) handle(ctx context.Context, g *group, in *inbound) bool {
	select {
	case <-in.done:
	case <-ctx.Done():
		return false
	}
	g.msgs = append(g.msgs, in.m)
	g.bytes += len(in.m.Payload())
	switch {
	case in.clear:
	case in.reason == reasonBadTopic:
		c.log.Warn("uplink message on an unknown topic")
		c.record(g, journalRecord{Type: recInvalid, At: in.at, Reason: reasonBadTopic})
	case in.reason != "":
		c.invalid(g, in.scope, in.at, in.reason)
	case in.kind == wire.TopicEvents:
		c.handleBatch(g, in.scope, in.batch, in.ids, in.m.Payload(), in.at)
	case in.kind == wire.TopicSyncRequest:
		c.record(g, journalRecord{Type: recSync, At: in.at, Store: in.scope.Store, Agent: in.scope.Agent, From: in.req.From})
		g.syncs = append(g.syncs, syncJob{scope: in.scope, from: in.req.From})
	case in.kind == wire.TopicStatus:
		s := in.status
		st := &StatusReport{Online: s.Online, At: s.At, Version: s.Version, Outbox: s.Outbox, Cursor: s.Cursor}
		c.record(g, journalRecord{Type: recStatus, At: in.at, Store: in.scope.Store, Agent: in.scope.Agent, Status: st})
	}
	return true
}

func (c *Central) invalid(g *group, scope wire.Scope, at int64, reason string) {
	c.log.Warn("invalid uplink message", "store", scope.Store, "agent", scope.Agent, "reason", reason)
	c.record(g, journalRecord{Type: recInvalid, At: at, Store: scope.Store, Agent: scope.Agent, Reason: reason})
}

// handleBatch applies the acceptance rule to one EventBatch.
//
// A batch is accepted when first <= lastAccepted+1: its never-seen events
// are recorded, lastAccepted becomes max(lastAccepted, last), and an Ack of
// [first, last] goes out after the commit. A batch with first beyond
// lastAccepted+1 is a gap: counted, not recorded, not acknowledged; the
// agent re-sends from its oldest unacknowledged batch.
func (c *Central) handleBatch(g *group, scope wire.Scope, b wire.EventBatch, ids [][idSize]byte, payload []byte, at int64) {
	key := agentKey{scope.Store, scope.Agent}
	prev := c.lastAccepted(key)
	if b.First > prev+1 {
		c.log.Info("batch beyond a gap, not acknowledged", "store", scope.Store, "agent", scope.Agent,
			"first", b.First, "last", b.Last, "last_accepted", prev)
		c.record(g, journalRecord{Type: recGap, At: at, Store: scope.Store, Agent: scope.Agent, First: b.First, Last: b.Last, Prev: prev})
		return
	}
	rec := journalRecord{Type: recBatch, At: at, Store: scope.Store, Agent: scope.Agent,
		First: b.First, Last: b.Last, Prev: prev, Events: uint32(len(ids))}
	rec.New, rec.Dups, rec.OutOfOrder = c.classify(b, ids, prev)
	if len(rec.New) > 0 && !c.cfg.IDsOnly {
		rec.Batch = payload
	}
	c.record(g, rec)
	if _, ok := g.acks[key]; !ok {
		g.order = append(g.order, key)
	}
	g.acks[key] = append(g.acks[key], wire.Range{First: b.First, Last: b.Last})
}

// classify marks each event of b new or duplicate, adding the new ones to
// the seen set, and counts the new events that arrived out of order. It
// returns the new events' ids, concatenated.
//
// Out of order, for a batch that overlaps what was accepted (first <=
// prev): a new event placed before a duplicate was captured before an
// event already delivered; and of the new events after the last duplicate,
// at most last-prev can have a sequence number above prev (holes only make
// that fewer), so any beyond that many are out of order too. A re-sent
// batch that was merely re-chunked (old events first, then new ones) counts
// zero, which the plain rule "every new event of an overlapping batch"
// would not.
func (c *Central) classify(b wire.EventBatch, batchIDs [][idSize]byte, prev uint64) (ids []byte, dups, outOfOrder uint32) {
	ids = make([]byte, 0, len(batchIDs)*idSize)
	newBeforeLastDup, newAfterLastDup := 0, 0
	for _, id := range batchIDs {
		// One hash of the id, not a lookup and then an insert: the set
		// grows only when the id is new.
		n := len(c.seen)
		if c.seen[id] = struct{}{}; len(c.seen) == n {
			dups++
			newBeforeLastDup += newAfterLastDup
			newAfterLastDup = 0
			continue
		}
		ids = append(ids, id[:]...)
		newAfterLastDup++
	}
	if b.First > prev || prev == 0 {
		return ids, dups, 0 // nothing accepted below: no overlap
	}
	room := uint64(0)
	if b.Last > prev {
		room = b.Last - prev
	}
	ooo := uint64(newBeforeLastDup)
	if n := uint64(newAfterLastDup); n > room {
		ooo += n - room
	}
	return ids, dups, uint32(ooo)
}

// record appends rec to the journal (unsynced) and applies it to the
// counters. An encoding or write error is kept for commit, which fails.
func (c *Central) record(g *group, rec journalRecord) {
	b, err := encodeRecord(&rec)
	if err == nil {
		_, err = c.journal.append(b)
	}
	if err != nil && c.journalErr == nil {
		c.journalErr = err
	}
	g.writes = true
	c.mu.Lock()
	c.uplink.apply(&rec)
	c.mu.Unlock()
}

func (c *Central) lastAccepted(k agentKey) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.uplink.agents[k]; a != nil {
		return a.LastAccepted
	}
	return 0
}

// commit makes g durable, then acknowledges it: Acks to the agents, PUBACKs
// to the broker, SyncRequests to the workers.
func (c *Central) commit(g *group) error {
	if c.journalErr != nil {
		return fmt.Errorf("journal: %w", c.journalErr)
	}
	if g.writes {
		if err := c.journal.sync(); err != nil {
			c.journalErr = err
			return fmt.Errorf("journal: %w", err)
		}
		c.mu.Lock()
		c.markDurable()
		c.mu.Unlock()
	}
	for _, k := range g.order {
		c.sendAcks(k, g.acks[k])
	}
	for _, m := range g.msgs {
		m.Ack()
	}
	for _, j := range g.syncs {
		c.dispatchSync(j)
	}
	return nil
}

// sendAcks publishes the Acks of one agent's accepted batches: one range
// per batch, exactly as the batch was sent, in as few signed messages as
// maxAckRanges allows. A range the DropAcks fault hook claims is left out.
func (c *Central) sendAcks(k agentKey, ranges []wire.Range) {
	keep := ranges[:0]
	for _, r := range ranges {
		if c.takeDroppedAck() {
			c.live.acksDropped.Add(1)
			continue
		}
		keep = append(keep, r)
	}
	scope := wire.Scope{Tenant: c.cfg.Tenant, Store: k.store, Agent: k.agent}
	topic, err := scope.Topic(wire.TopicAcks)
	if err != nil {
		return // the topic parsed, so this cannot happen
	}
	pace := c.pace.Load()
	for len(keep) > 0 {
		n := min(len(keep), maxAckRanges)
		msg, err := wire.SignAck(c.signer, scope, wire.Ack{Agent: k.agent, Ranges: keep[:n], Pace: pace, At: c.nowMs()})
		keep = keep[n:]
		if err != nil {
			c.log.Error("sign ack", "store", k.store, "agent", k.agent, "err", err)
			continue
		}
		if tok := c.publish(topic, msg); tok == nil {
			c.live.publishErrors.Add(1)
			continue
		}
		c.live.ackMessages.Add(1)
		c.live.acksSent.Add(uint64(n))
	}
}

// takeDroppedAck consumes one unit of the DropAcks counter, if any.
func (c *Central) takeDroppedAck() bool {
	for {
		n := c.dropAcks.Load()
		if n <= 0 {
			return false
		}
		if c.dropAcks.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// shardOf picks the sync worker of an agent, so one agent's replies never
// interleave.
func shardOf(scope wire.Scope, n int) int {
	h := fnv.New32a()
	h.Write([]byte(scope.Store))
	h.Write([]byte{'/'})
	h.Write([]byte(scope.Agent))
	return int(h.Sum32() % uint32(n))
}

// dispatchSync hands a SyncRequest to its worker without blocking the
// recorder: a worker busy with a long snapshot must not stall the acks of
// every agent. A full queue drops the request (counted); the agent asks
// again.
func (c *Central) dispatchSync(j syncJob) {
	q := c.syncQ[shardOf(j.scope, len(c.syncQ))]
	select {
	case q <- j:
	default:
		c.live.syncOverflow.Add(1)
		c.log.Warn("sync request dropped: worker queue full", "store", j.scope.Store, "agent", j.scope.Agent)
	}
}
