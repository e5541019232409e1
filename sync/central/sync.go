package central

import (
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

const (
	// syncQueueSize is the depth of each sync worker's queue.
	syncQueueSize = 16
	// syncWindow is how many chunks of one reply may await the broker's
	// PUBACK at once: enough to keep the link busy, few enough that memory
	// stays flat (paho keeps each in its store until acknowledged).
	syncWindow = 2
	// chunkTimeout bounds the wait for the PUBACK of one chunk.
	chunkTimeout = 30 * time.Second
)

// syncJob is a SyncRequest to answer, or a snapshot to push.
type syncJob struct {
	scope wire.Scope
	from  uint64
	force bool             // push a snapshot whatever from says
	reply chan syncOutcome // nil for a SyncRequest from MQTT
}

type syncOutcome struct {
	res SyncResult
	err error
}

// syncLoop is one sync worker. Each agent always goes to the same worker
// (shardOf), so the chunks of two replies to one agent never interleave.
func (c *Central) syncLoop(ctx context.Context, q <-chan syncJob) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-q:
			res, err := c.serveSync(ctx, j)
			if j.reply != nil {
				j.reply <- syncOutcome{res, err}
			}
		}
	}
}

// serveSync answers one job on the agent's sync reply topic.
//
// A SyncRequest{from} gets a snapshot when from is older than the log
// holds: from <= 1 while there is a baseline (the agent never saw it).
// Otherwise it gets the run from..seq, or an empty run when from is beyond
// seq.
func (c *Central) serveSync(ctx context.Context, j syncJob) (SyncResult, error) {
	start := time.Now()
	topic, err := j.scope.Topic(wire.TopicSyncReply)
	if err != nil {
		return SyncResult{}, err
	}
	sl, err := c.storeLog(j.scope.Store, false)
	if err != nil {
		return SyncResult{}, err
	}
	pub := c.newChunkPublisher(ctx, topic)
	var res SyncResult
	if j.force || j.from < sl.base {
		res, err = c.Snapshot(ctx, j.scope, pub.emit)
	} else {
		v := sl.view()
		res, err = c.streamRun(ctx, j.scope, &v, j.from, pub.emit)
	}
	err = errors.Join(err, pub.wait())
	c.live.syncs.Add(1)
	if res.Snapshot {
		c.live.snapshotsSent.Add(1)
	}
	log := c.log.With("store", j.scope.Store, "agent", j.scope.Agent, "snapshot", res.Snapshot,
		"from", res.From, "to", res.To, "chunks", res.Chunks, "changes", res.Changes, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		log.Warn("sync reply failed", "err", err)
		return res, err
	}
	log.Info("sync reply sent")
	return res, nil
}

// chunkPublisher publishes the chunks of one reply in order, with at most
// syncWindow awaiting the broker's PUBACK.
type chunkPublisher struct {
	c        *Central
	ctx      context.Context
	topic    string
	inflight []mqtt.Token
}

func (c *Central) newChunkPublisher(ctx context.Context, topic string) *chunkPublisher {
	return &chunkPublisher{c: c, ctx: ctx, topic: topic}
}

func (p *chunkPublisher) emit(msg []byte) error {
	if len(p.inflight) >= syncWindow {
		if err := link.Wait(p.ctx, p.inflight[0], chunkTimeout); err != nil {
			return fmt.Errorf("publish chunk: %w", err)
		}
		p.inflight = p.inflight[1:]
	}
	tok := p.c.publish(p.topic, msg)
	if tok == nil {
		p.c.live.publishErrors.Add(1)
		return fmt.Errorf("publish chunk: %w", ErrNotRunning)
	}
	p.inflight = append(p.inflight, tok)
	return nil
}

// wait waits for every chunk still in flight.
func (p *chunkPublisher) wait() error {
	for _, tok := range p.inflight {
		if err := link.Wait(p.ctx, tok, chunkTimeout); err != nil {
			return fmt.Errorf("publish chunk: %w", err)
		}
	}
	p.inflight = nil
	return nil
}

// PushSnapshot sends a snapshot of its store to the agent of to, unasked,
// through the agent's sync worker (after any reply already queued for it),
// and waits until every chunk is with the broker. It needs Run.
func (c *Central) PushSnapshot(ctx context.Context, to wire.Scope) (SyncResult, error) {
	if _, err := to.Topic(wire.TopicSyncReply); err != nil {
		return SyncResult{}, badRequest("scope: %v", err)
	}
	if to.Tenant != c.cfg.Tenant {
		return SyncResult{}, badRequest("tenant is not the central's")
	}
	if !c.running.Load() {
		return SyncResult{}, ErrNotRunning
	}
	j := syncJob{scope: to, force: true, reply: make(chan syncOutcome, 1)}
	select {
	case c.syncQ[shardOf(to, len(c.syncQ))] <- j:
	case <-ctx.Done():
		return SyncResult{}, ctx.Err()
	case <-c.runDone:
		return SyncResult{}, ErrNotRunning
	}
	select {
	case out := <-j.reply:
		return out.res, out.err
	case <-ctx.Done():
		return SyncResult{}, ctx.Err()
	case <-c.runDone:
		return SyncResult{}, ErrNotRunning
	}
}
