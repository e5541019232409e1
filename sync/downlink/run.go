package downlink

import (
	"context"
	"errors"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

// state is Run's, owned by its goroutine.
type state struct {
	*Downlink
	held    map[uint64]wire.Change // changes after a gap, by seq
	gap     bool                   // a gap is open: ask again until it closes
	lastReq time.Time
	snap    *agent.Snapshot // the snapshot being received, if any
	snapTo  uint64
}

// Run handles messages from in (the three topics of Topics, in any
// mixture) until ctx ends, then returns nil. It asks for a sync at start.
func (d *Downlink) Run(ctx context.Context, in <-chan link.Message) error {
	s := &state{Downlink: d, held: map[uint64]wire.Change{}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	s.requestSync(ctx)
	var waiting []link.Message
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-in:
			// What else has arrived is handled with it, so a burst of
			// changes (a day's, queued by the broker for our session)
			// shares transactions.
			ms := append(waiting[:0], m)
		more:
			for len(ms) < agent.MaxRun {
				select {
				case m := <-in:
					ms = append(ms, m)
				default:
					break more
				}
			}
			s.handleAll(ctx, ms)
			for _, m := range ms {
				m.Ack() // handled (applied, held or dropped): the broker may send the next
			}
			clear(ms)
			waiting = ms
		case <-d.resyncSignal:
			s.requestSync(ctx)
		case <-tick.C:
			if s.gap && time.Since(s.lastReq) >= d.cfg.ResyncEvery {
				s.requestSync(ctx)
			}
		}
	}
}

// handleAll handles messages in order; consecutive changes are applied as
// runs.
func (s *state) handleAll(ctx context.Context, ms []link.Message) {
	var run []wire.Change
	for _, m := range ms {
		kind, _, err := wire.ParseTopic(m.Topic)
		if err != nil {
			s.reject("bad_topic", err)
			continue
		}
		if kind == wire.TopicChanges {
			ch, err := wire.VerifyChange(s.cfg.Verifier, s.changeScope, m.Payload)
			if err != nil {
				s.reject(reasonOf(err), err)
				continue
			}
			run = append(run, ch)
			continue
		}
		s.applyRun(ctx, run)
		run = run[:0]
		s.handle(ctx, kind, m)
	}
	s.applyRun(ctx, run)
}

// handle handles one message that is not a change.
func (s *state) handle(ctx context.Context, kind wire.TopicKind, m link.Message) {
	switch kind {
	case wire.TopicAcks:
		a, err := wire.VerifyAck(s.cfg.Verifier, s.cfg.Scope, m.Payload)
		if err != nil {
			s.reject(reasonOf(err), err)
			return
		}
		s.count(func(st *Stats) { st.Acks++ })
		s.onAck(a)
	case wire.TopicSyncReply:
		cs, err := wire.VerifyChangeSet(s.cfg.Verifier, s.cfg.Scope, m.Payload)
		if err != nil {
			s.reject(reasonOf(err), err)
			return
		}
		s.applySet(ctx, cs)
	default:
		s.reject("bad_topic", errors.New("not a downlink topic"))
	}
}

// applyRun applies changes in order, as apply would one by one, in as
// few transactions as the agent's ApplyRun allows: one fsync for a run
// of a sync reply or of a burst of the stream, not one per change. Then
// the held changes that now follow the cursor.
func (s *state) applyRun(ctx context.Context, chs []wire.Change) {
	if s.applyAll(ctx, chs) {
		s.drainHeld(ctx)
	}
}

// applyAll applies chs in runs and reports whether any was applied. A
// change that fails (bad, or the disk) goes through apply alone, which
// says why as it always has.
func (s *state) applyAll(ctx context.Context, chs []wire.Change) bool {
	applied := false
	run := make([]agent.Change, 0, min(len(chs), agent.MaxRun))
	for len(chs) > 0 {
		run = run[:0]
		for _, ch := range chs[:min(len(chs), agent.MaxRun)] {
			ac, err := s.convert(ch)
			if err != nil {
				break
			}
			run = append(run, ac)
		}
		var res []agent.ApplyResult
		if len(run) > 0 {
			var err error
			if res, err = s.ap.ApplyRun(ctx, run); err != nil {
				res = nil
			}
		}
		if len(res) == 0 {
			applied = s.apply(ctx, chs[0]) || applied
			chs = chs[1:]
			continue
		}
		for i, r := range res {
			applied = s.applied(ctx, chs[i], r) || applied
		}
		chs = chs[len(res):]
	}
	return applied
}

// apply applies one change and reports whether it was.
func (s *state) apply(ctx context.Context, ch wire.Change) bool {
	ac, err := s.convert(ch)
	if err != nil {
		s.seen(ch)
		s.reject("bad_change", err)
		return false
	}
	res, err := s.ap.Apply(ctx, ac)
	switch {
	case errors.Is(err, agent.ErrBadChange):
		s.seen(ch)
		s.reject("bad_change", err)
	case err != nil:
		// The disk failed: nothing moved; the change comes again on resync.
		s.seen(ch)
		s.log.Error("apply change", "seq", ch.Seq, "err", err)
		s.gap = true
	default:
		return s.applied(ctx, ch, res)
	}
	return false
}

// seen notes a change from the central in the stats.
func (s *state) seen(ch wire.Change) {
	s.count(func(st *Stats) { st.Head = max(st.Head, ch.Seq); st.LastChangeAt = time.Now().UnixMilli() })
}

// applied counts what the agent did with ch, holds it if it came after a
// gap, and reports whether it was applied.
func (s *state) applied(ctx context.Context, ch wire.Change, res agent.ApplyResult) bool {
	s.seen(ch)
	switch res {
	case agent.Applied:
		s.count(func(st *Stats) { st.Applied++ })
		return true
	case agent.Duplicate:
		s.count(func(st *Stats) { st.Duplicates++ })
	case agent.Gap:
		s.hold(ctx, ch)
	}
	return false
}

// hold keeps a change that arrived after a gap and asks for what is
// missing.
func (s *state) hold(ctx context.Context, ch wire.Change) {
	s.count(func(st *Stats) { st.Gaps++ })
	if len(s.held) < s.cfg.MaxHeld {
		s.held[ch.Seq] = ch
	}
	s.count(func(st *Stats) { st.Held = len(s.held) })
	if !s.gap || time.Since(s.lastReq) >= s.cfg.ResyncEvery {
		s.gap = true
		s.requestSync(ctx)
	}
}

// drainHeld applies held changes that now follow the cursor, as runs.
func (s *state) drainHeld(ctx context.Context) {
	for {
		cur, err := s.ap.Cursor()
		if err != nil {
			return
		}
		for seq := range s.held {
			if seq <= cur {
				delete(s.held, seq)
			}
		}
		var run []wire.Change
		for seq := cur + 1; ; seq++ {
			ch, ok := s.held[seq]
			if !ok {
				break
			}
			delete(s.held, seq)
			run = append(run, ch)
		}
		s.count(func(st *Stats) { st.Held = len(s.held) })
		if len(run) == 0 {
			s.gap = len(s.held) > 0
			return
		}
		s.applyAll(ctx, run)
	}
}

// applySet applies a reply to a sync request: a run of changes, or a chunk
// of a snapshot.
func (s *state) applySet(ctx context.Context, cs wire.ChangeSet) {
	if !cs.Snapshot {
		s.applyRun(ctx, cs.Changes)
		return
	}
	cur, err := s.ap.Cursor()
	if err != nil {
		return
	}
	if cs.To <= cur {
		// A replayed or stale snapshot would roll the cache back.
		s.reject("stale_snapshot", errors.New("snapshot not newer than the cursor"))
		return
	}
	if err := s.snapshotChunk(ctx, cs); err != nil {
		s.snap = nil
		s.log.Error("snapshot", "to", cs.To, "err", err)
		s.gap = true // ask again
	}
}

func (s *state) snapshotChunk(ctx context.Context, cs wire.ChangeSet) error {
	if s.snap == nil || s.snapTo != cs.To {
		snap, err := s.ap.BeginSnapshot(ctx, cs.To)
		if err != nil {
			return err
		}
		s.snap, s.snapTo = snap, cs.To
	}
	changes := make([]agent.Change, 0, len(cs.Changes))
	for _, ch := range cs.Changes {
		ac, err := s.convert(ch)
		if err != nil {
			return err
		}
		changes = append(changes, ac)
	}
	if err := s.snap.Add(ctx, changes); err != nil {
		return err
	}
	if cs.More {
		return nil
	}
	n, err := s.snap.Commit(ctx)
	s.snap = nil
	if err != nil {
		return err
	}
	s.count(func(st *Stats) { st.Snapshots++; st.Head = max(st.Head, cs.To) })
	s.log.Info("snapshot applied", "profiles", n, "cursor", cs.To)
	s.gap = false
	s.drainHeld(ctx)
	return nil
}

// requestSync asks the central for every change after the cursor.
func (s *state) requestSync(ctx context.Context) {
	cur, err := s.ap.Cursor()
	if err != nil {
		return
	}
	b, err := wire.EncodeSyncRequest(wire.SyncRequest{Agent: s.cfg.Scope.Agent, From: cur + 1})
	if err != nil {
		s.log.Error("encode sync request", "err", err)
		return
	}
	s.lastReq = time.Now()
	if err := s.pub.Publish(ctx, s.syncTopic, b, false); err != nil {
		return // offline: the next connection asks again
	}
	s.count(func(st *Stats) { st.SyncRequests++ })
}
