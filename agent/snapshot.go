package agent

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// Snapshot builds a whole new cache from the central's snapshot chunks in
// the cache generation that is not live, while Identify keeps serving the
// live one; Commit switches generations in one transaction that also sets
// the cursor. Chunks are written one transaction each, so memory stays flat
// however many profiles the snapshot holds.
type Snapshot struct {
	a      *Agent
	to     uint64
	gen    uint64
	policy *consent.Policy // the snapshot's own policy, if it carries one
	n      int
}

// BeginSnapshot starts a snapshot that leaves the cache at cursor to. It
// clears whatever an interrupted snapshot left in the staging generation.
func (a *Agent) BeginSnapshot(ctx context.Context, to uint64) (*Snapshot, error) {
	s := &Snapshot{a: a, to: to, gen: a.gen.Load() + 1, policy: a.Policy()}
	err := a.db.Update(func(tx *store.Tx) error {
		for _, b := range []string{store.BucketProfiles, store.BucketIdents, store.BucketExpiry} {
			if err := tx.ClearBucket(store.CacheBucket(b, s.gen)); err != nil {
				return err
			}
		}
		return tx.SetMetaUint(fmt.Sprint(metaCountBase, s.gen%2), 0)
	})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	return s, nil
}

// Add writes one chunk of the snapshot: profile, consent, restrict and
// policy changes (their seq is ignored: the snapshot as a whole is at its
// cursor). Within a chunk, decisions are applied before slices, whatever
// their order, because a slice is filtered by its customer's decisions as
// it is written. A customer's changes must therefore share one chunk
// (cmd/cdpsim's snapshots do; PROTOCOL notes in sync/wire say so).
func (s *Snapshot) Add(ctx context.Context, changes []Change) error {
	changes = slices.Clone(changes)
	slices.SortStableFunc(changes, func(x, y Change) int { return cmp.Compare(kindOrder(x.Kind), kindOrder(y.Kind)) })
	for i := range changes {
		if ch := &changes[i]; ch.Kind == ChangePolicy {
			if err := ch.validate(); err != nil {
				return err
			}
			p := *ch.Policy
			p.V, p.Seq = 1, s.to
			s.policy = &p
		}
	}
	err := s.a.db.Update(func(tx *store.Tx) error {
		c := s.a.cacheIn(tx, s.gen)
		c.pol = s.policy
		for _, ch := range changes {
			if err := s.add(c, ch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("snapshot chunk: %w", err)
	}
	s.n += len(changes)
	return nil
}

func kindOrder(k string) int {
	if k == ChangeProfile {
		return 1
	}
	return 0
}

func (s *Snapshot) add(c *cache, ch Change) error {
	if ch.Kind == ChangePolicy {
		return nil
	}
	if ch.Seq == 0 {
		ch.Seq = s.to // validate wants one; a snapshot's changes need not carry theirs
	}
	if err := ch.validate(); err != nil {
		return err
	}
	pk := s.a.pkey(ch.Profile)
	old, err := c.get(pk)
	if err != nil {
		return err
	}
	rec := old
	if rec == nil {
		rec = &profileRec{ID: ch.Profile}
	}
	switch ch.Kind {
	case ChangeProfile:
		rec.Version, rec.Expires, rec.Idents, rec.Attrs = ch.Version, ch.Expires, ch.Idents, ch.Attrs
		rec.Inactive = inactive(ch.Attrs, rec.Inactive)
	case ChangeConsent:
		if rec.Consent == nil {
			rec.Consent = map[string]consent.Entry{}
		}
		for p, e := range ch.Consent {
			e.Source = consent.Central
			rec.Consent[p] = e
		}
	case ChangeRestrict:
		rec.Restricted = ch.Restricted
	default:
		return fmt.Errorf("%w: a snapshot cannot carry a %s change", ErrBadChange, ch.Kind)
	}
	if old != nil {
		o := *old
		old = &o
	}
	return c.put(pk, rec, old)
}

// Commit makes the snapshot the live cache, at cursor to, in one
// transaction. Decisions made here that are newer than the snapshot's, and
// customers enrolled here that the central does not know yet, are carried
// over. The old generation is emptied after, and a compaction is scheduled:
// a customer the snapshot left out must leave the file too.
func (s *Snapshot) Commit(ctx context.Context) (int, error) {
	a := s.a
	err := a.db.Update(func(tx *store.Tx) error {
		live, next := a.live(tx), a.cacheIn(tx, s.gen)
		next.pol = s.policy
		if err := carryLocal(live, next); err != nil {
			return err
		}
		if s.policy.Seq == s.to {
			b, err := store.MarshalRecord(s.policy)
			if err != nil {
				return err
			}
			if err := tx.Bucket(store.BucketState).Put([]byte(statePolicy), b); err != nil {
				return err
			}
		}
		if err := tx.SetMetaUint(metaGen, s.gen); err != nil {
			return err
		}
		if err := tx.SetMetaUint(metaCursor, s.to); err != nil {
			return err
		}
		return tx.MarkForCompaction()
	})
	if err != nil {
		return 0, fmt.Errorf("commit snapshot: %w", err)
	}
	a.gen.Store(s.gen)
	a.policy.Store(s.policy)
	a.log.Info("snapshot applied", "profiles", s.n, "cursor", s.to)
	return s.n, a.clearGen(s.gen + 1)
}

// carryLocal copies into next what only this store knows: profiles made
// here, and local decisions newer than the snapshot's.
func carryLocal(live, next *cache) error {
	return live.profiles().ForEach(nil, func(k, _ []byte) error {
		rec, err := live.get(k)
		if err != nil || rec == nil {
			return err
		}
		into, err := next.get(k)
		if err != nil {
			return err
		}
		if into == nil {
			if !rec.Local {
				return nil // the central no longer has this customer
			}
			return next.put(k, rec, nil)
		}
		changed := false
		for p, e := range rec.Consent {
			if e.Source == consent.Local && consent.Wins(e, into.Consent[p]) {
				if into.Consent == nil {
					into.Consent = map[string]consent.Entry{}
				}
				into.Consent[p], changed = e, true
			}
		}
		if !changed {
			return nil
		}
		old := *into
		return next.put(k, into, &old)
	})
}

// clearGen empties a cache generation that is no longer live.
func (a *Agent) clearGen(gen uint64) error {
	return a.db.Update(func(tx *store.Tx) error {
		for _, b := range []string{store.BucketProfiles, store.BucketIdents, store.BucketExpiry} {
			if err := tx.ClearBucket(store.CacheBucket(b, gen)); err != nil {
				return err
			}
		}
		return tx.SetMetaUint(fmt.Sprint(metaCountBase, gen%2), 0)
	})
}

// inactive reads the account status the central sends as the attribute
// account_status ("active" or anything else): the contract basis holds only
// for an active account. Without the attribute, the last status stands.
func inactive(attrs []Attribute, was bool) bool {
	for _, at := range attrs {
		if at.Name == "account_status" {
			return at.Value != "active"
		}
	}
	return was
}

// Recheck re-checks consent for queued records about to leave (invariant
// 4, the last line): a record linked to a customer whose purpose is no
// longer permitted leaves stripped, whatever happened since it was queued.
// It returns the payloads to send, in the records' order. A customer no
// longer cached (expired) keeps what was decided when the event was
// captured; a withdrawal would have stripped it then.
func (a *Agent) Recheck(recs []store.Record) ([][]byte, error) {
	out := make([][]byte, len(recs))
	permitted := map[string]map[string]bool{} // subject -> purpose -> permitted
	pol := a.Policy()
	err := a.db.View(func(tx *store.Tx) error {
		c := a.live(tx)
		for i, r := range recs {
			out[i] = r.Payload
			if len(r.Subject) == 0 || r.Label == consent.RightsPurpose {
				continue
			}
			ok, err := permittedFor(c, pol, permitted, r)
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			ev, err := event.Decode(r.Payload)
			if err != nil {
				return err
			}
			ev.Strip(a.cfg.Identifying)
			if out[i], err = ev.Encode(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func permittedFor(c *cache, pol *consent.Policy, memo map[string]map[string]bool, r store.Record) (bool, error) {
	m, seen := memo[string(r.Subject)]
	if !seen {
		rec, err := c.get(r.Subject)
		if err != nil {
			return false, err
		}
		m = map[string]bool{}
		memo[string(r.Subject)] = m
		if rec == nil {
			return true, nil // not cached: keep the capture-time decision (an empty map marks it)
		}
		for _, pu := range pol.Purposes {
			m[pu.Name] = pol.Permitted(pu.Name, rec.subject())
		}
	}
	if len(m) == 0 {
		return true, nil
	}
	return m[r.Label], nil
}
