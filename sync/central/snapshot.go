package central

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/storeagent/storeagent/sync/wire"
)

// SyncResult says how a SyncRequest or a pushed snapshot was answered.
type SyncResult struct {
	// Snapshot is true for a snapshot, false for a run of changes.
	Snapshot bool `json:"snapshot"`
	// From and To are the seqs the reply covers (a snapshot stands at To).
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Chunks is how many ChangeSets were sent, Changes how many changes
	// they held, Bytes their signed size.
	Chunks  int   `json:"chunks"`
	Changes int   `json:"changes"`
	Bytes   int64 `json:"bytes"`
}

// chunkBudget is what the changes of one ChangeSet may take, encoded.
const chunkBudget = wire.MaxChangeSetSize - wire.MaxChangeSetOverhead

// chunk is one ChangeSet's worth of changes, before signing.
type chunk struct {
	changes []wire.Change
	more    bool
}

// packer groups changes into chunks of at most chunkBudget encoded bytes
// and wire.MaxItems changes. A group (one customer's consent, restriction
// and profile) never straddles two chunks: the agent filters a slice by
// the decisions of the same chunk.
type packer struct {
	ctx     context.Context
	out     chan<- chunk
	pending []wire.Change
	size    int
}

func (p *packer) add(group ...wire.Change) error {
	size := 0
	for _, ch := range group {
		b, err := wire.EncodeChange(ch)
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		size += len(b)
	}
	if len(p.pending) > 0 && (p.size+size > chunkBudget || len(p.pending)+len(group) > wire.MaxItems) {
		if err := p.flush(true); err != nil {
			return err
		}
	}
	p.pending = append(p.pending, group...)
	p.size += size
	return nil
}

// flush sends the pending changes as a chunk, even none (a snapshot of an
// empty state is one empty chunk).
func (p *packer) flush(more bool) error {
	select {
	case p.out <- chunk{changes: p.pending, more: more}:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	p.pending, p.size = make([]wire.Change, 0, cap(p.pending)), 0
	return nil
}

// Snapshot streams the state of the store of to, at the store's current
// seq, as signed snapshot chunks for the sync reply topic of the agent in
// to, calling emit with each in order (the last has more false). It is what
// a SyncRequest from an agent without the baseline gets; use it directly to
// measure or to save a snapshot.
//
// The state is the baseline (the synthetic customers, generated on the
// fly) with every logged change laid over it: erased customers absent,
// consents, restrictions, profiles and the policy as last changed. Every
// chunk holds whole customers: consent first, then restriction, then
// profile. The first chunk holds the policy. Memory stays flat however many
// customers there are: one chunk is built while the previous one is signed
// and emitted.
func (c *Central) Snapshot(ctx context.Context, to wire.Scope, emit func(chunk []byte) error) (SyncResult, error) {
	sl, err := c.storeLog(to.Store, false)
	if err != nil {
		return SyncResult{}, err
	}
	v := sl.view()
	res := SyncResult{Snapshot: true, From: 1, To: v.seq}
	chunks := make(chan chunk, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(chunks)
		return c.packSnapshot(gctx, &v, chunks)
	})
	g.Go(func() error {
		for ch := range chunks {
			cs := wire.ChangeSet{From: 1, To: v.seq, Snapshot: true, More: ch.more, Changes: ch.changes}
			if err := c.emitSet(to, cs, emit, &res); err != nil {
				return err
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return res, err
	}
	return res, nil
}

// emitSet signs cs for the sync reply topic of to and emits it.
func (c *Central) emitSet(to wire.Scope, cs wire.ChangeSet, emit func([]byte) error, res *SyncResult) error {
	msg, err := wire.SignChangeSet(c.signer, to, cs)
	if err != nil {
		return fmt.Errorf("sign change set: %w", err)
	}
	if err := emit(msg); err != nil {
		return err
	}
	res.Chunks++
	res.Changes += len(cs.Changes)
	res.Bytes += int64(len(msg))
	return nil
}

// packSnapshot generates the snapshot's changes into chunks.
func (c *Central) packSnapshot(ctx context.Context, v *storeView, out chan<- chunk) error {
	p := &packer{ctx: ctx, out: out}
	if pol, seq := v.policy, v.policySeq; pol != nil || c.cfg.Customers > 0 {
		if pol == nil {
			pol, seq = DefaultPolicy(), 1
		}
		if err := p.add(wire.Change{Seq: seq, Body: pol}); err != nil {
			return err
		}
	}
	expires := c.cfg.Now().Add(c.cfg.ProfileTTL).UnixMilli()
	gen := c.customers.generator()
	for i := range c.cfg.Customers {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		st := v.state[ProfileID(i)]
		if st != nil && !st.present() {
			continue
		}
		cu := gen.customer(i)
		if err := p.add(customerChanges(&cu, st, expires)...); err != nil {
			return err
		}
	}
	// Profiles the baseline does not hold, created by profile changes.
	for _, id := range slices.Sorted(maps.Keys(v.state)) {
		st := v.state[id]
		if i, ok := CustomerIndex(id); (ok && i < c.cfg.Customers) || st.profile == nil {
			continue // a baseline id, emitted above, or absent
		}
		if err := p.add(customerChanges(nil, st, expires)...); err != nil {
			return err
		}
	}
	return p.flush(false)
}

// customerChanges returns one customer's part of a snapshot: consent,
// restriction (only when restricted), profile. cu is the baseline
// customer, nil for a profile the baseline does not hold; st is what
// changes made of it, nil for none. Each change carries the seq that last
// set it (1 for the baseline).
func customerChanges(cu *Customer, st *profileState, expires int64) []wire.Change {
	out := make([]wire.Change, 0, 3)
	var purposes map[string]wire.ConsentEntry
	seq := uint64(1)
	if cu != nil && (st == nil || st.baseline) {
		purposes = cu.Consent
	}
	if st != nil && len(st.consent) > 0 {
		if purposes == nil {
			purposes = make(map[string]wire.ConsentEntry, len(st.consent))
		}
		maps.Copy(purposes, st.consent)
		seq = st.consentSeq
	}
	id := ""
	switch {
	case st != nil && st.profile != nil:
		id = st.profile.Profile
	case cu != nil:
		id = cu.Profile
	}
	if len(purposes) > 0 {
		out = append(out, wire.Change{Seq: seq, Body: &wire.ConsentChange{Profile: id, Purposes: purposes}})
	}
	if st != nil && st.restricted {
		out = append(out, wire.Change{Seq: st.restrictSeq, Body: &wire.RestrictChange{Profile: id, Restricted: true}})
	}
	if st != nil && st.profile != nil {
		return append(out, wire.Change{Seq: st.profileSeq, Body: st.profile})
	}
	return append(out, wire.Change{Seq: 1, Body: &wire.ProfileChange{
		Profile: id, Idents: cu.Idents, Attrs: cu.Attrs, Version: 1, Expires: expires,
	}})
}

// streamRun emits the changes from..v.seq of the log as a run, in chunks
// packed like a snapshot's. A from beyond the current seq gets one empty
// run {from: seq+1, to: seq}: "nothing after seq" (a run must have to >=
// from-1, so the request's own from cannot be echoed).
func (c *Central) streamRun(ctx context.Context, to wire.Scope, v *storeView, from uint64, emit func([]byte) error) (SyncResult, error) {
	res := SyncResult{From: from, To: v.seq}
	if from > v.seq {
		res.From = v.seq + 1
		return res, c.emitSet(to, wire.ChangeSet{From: v.seq + 1, To: v.seq}, emit, &res)
	}
	cs := wire.ChangeSet{From: from}
	size := 0
	for seq := from; seq <= v.seq; seq++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		ch, err := v.change(c, seq)
		if err != nil {
			return res, err
		}
		b, err := wire.EncodeChange(ch)
		if err != nil {
			return res, err
		}
		if len(cs.Changes) > 0 && (size+len(b) > chunkBudget || len(cs.Changes) >= wire.MaxItems) {
			cs.To, cs.More = seq-1, true
			if err := c.emitSet(to, cs, emit, &res); err != nil {
				return res, err
			}
			cs, size = wire.ChangeSet{From: seq}, 0
		}
		cs.Changes = append(cs.Changes, ch)
		size += len(b)
	}
	cs.To = v.seq
	return res, c.emitSet(to, cs, emit, &res)
}
